"""PostgreSQL's and MySQL's type rules live in modules of their own, loaded when that family is
first asked for: a SQLite plan does not import their SQLAlchemy dialects, and the registry always
answers a family with its whole list, in the order the rules registered."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

PROBE = """
import json, sys
import sqlalchemy as sa
from ingestion_core.typemap import fidelity
engine = sa.create_engine("sqlite://")
with engine.begin() as c:
    c.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, amount NUMERIC(10, 2))")
table = sa.Table("t", sa.MetaData(), autoload_with=engine)
plan = fidelity.plan_table(engine, table, "sqlite")
names = ("sqlalchemy.dialects.postgresql", "ingestion_core.typemap.rules_postgres")
after_sqlite = {m: m in sys.modules for m in names}
postgres = [r.__name__ for r in fidelity.TYPE_RULES["postgres"]]
mysql = [r.__name__ for r in fidelity.TYPE_RULES.get("mysql")]
print(json.dumps({"decisions": [d["decision"] for d in plan.records()], "after_sqlite": after_sqlite,
                  "postgres": postgres, "mysql": mysql, "probe": "postgres" in fidelity.FACT_PROBES}))
"""


def test_a_family_loads_its_rules_when_first_asked_for() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["decisions"] == ["exact", "exact", "exact"]
    assert seen["after_sqlite"] == {"sqlalchemy.dialects.postgresql": False,
                                    "ingestion_core.typemap.rules_postgres": False}
    generic = ["integers", "decimals", "floats", "plain_types"]
    assert seen["postgres"] == [*generic, "pg_temporal", "pg_special"]  # the whole list, in order
    assert seen["mysql"] == [*generic, "mysql_special"]
    assert seen["probe"]  # PostgreSQL's fact probe came with its rules

"""Quality checks, reconciliation and schema changes with a real PostgreSQL source: typed
columns (numeric, timestamptz, date, integer) compared with configured values, a quoted
mixed-case table, the incremental window counted on the server."""

from __future__ import annotations

from pathlib import Path

from ingestion_core.config.secrets import store_secret
from ingestion_core.config.store import ConfigStore
from ingestion_core.pipeline.runner import preview_source, run_source

TABLE = """
CREATE TABLE "Order Lines" (
    "Order ID" bigint PRIMARY KEY,
    "Status" varchar(10) NOT NULL,
    amount numeric(12, 2),
    qty integer,
    ordered_on date,
    changed_at timestamptz NOT NULL
);
INSERT INTO "Order Lines"
SELECT g, CASE WHEN g % 2 = 0 THEN 'open' ELSE 'paid' END, g * 1.25, g % 5, DATE '2024-01-01' + g,
       now() - make_interval(mins => 420 - g)
FROM generate_series(1, 400) g;
"""
CHECKS = """\
    checks:
      - {row_count: {min: 400, max: 400}}
      - {not_null: amount}
      - {unique: Order ID}
      - {accepted_values: {column: Status, values: [open, paid]}}
      - {accepted_values: {column: qty, values: [0, 1, 2, 3, 4]}}
      - {regex: {column: Status, pattern: '^[a-z]+$'}}
      - {range: {column: amount, min: 0, max: 500.00}}
      - {range: {column: ordered_on, min: 2024-01-01, max: '2025-12-31'}}
      - {range: {column: changed_at, min: '2020-01-01T00:00:00+00:00'}}
      - {freshness: {column: changed_at, max_age: 1h}}
      - {custom_sql: {sql: "SELECT * FROM {table} WHERE qty > 4 OR amount <> order_id * 1.25"}}
"""


def write_source(project: Path, db, tables: str) -> object:
    store_secret(f"${{secrets.{db.name}.password}}", db.password)
    (project / "configs" / "sources" / "pg.yaml").write_text(
        f"name: pg\nowner: data-ops\nsource:\n  type: postgres\n  host: {db.host}\n  port: {db.port}\n"
        f"  database: {db.name}\n  username: {db.user}\n  password: '${{secrets.{db.name}.password}}'\n"
        f"retries: {{attempts: 1}}\ntables:\n{tables}"
    )
    return ConfigStore().load_source("pg").config


def statuses(record) -> list[tuple[str, str]]:
    return [(q["name"], q["status"]) for q in record.tables[0].quality]


def test_every_check_on_typed_postgres_columns(ingest_env: Path, postgres_db) -> None:
    postgres_db.execute(TABLE)
    config = write_source(ingest_env, postgres_db, "  - name: Order Lines\n    reconcile: true\n" + CHECKS)
    clean = run_source(config, actor="ana")
    assert clean.status == "success", clean.tables[0].quality
    assert {status for _, status in statuses(clean)} == {"pass"}
    postgres_db.execute("""
        INSERT INTO "Order Lines" VALUES (401, 'lost', -1.00, 7, DATE '2031-01-01', now() - interval '3 hours');
        UPDATE "Order Lines" SET changed_at = now() - interval '2 hours', amount = NULL WHERE "Order ID" = 5;
        UPDATE "Order Lines" SET changed_at = changed_at - interval '2 hours';
    """)
    bad = run_source(config, actor="ana")
    assert bad.status == "quality_failed"
    assert statuses(bad) == [
        ("row_count", "fail"), ("not_null(amount)", "fail"), ("unique(Order ID)", "pass"),
        ("accepted_values(Status)", "fail"), ("accepted_values(qty)", "fail"), ("regex(Status)", "pass"),
        ("range(amount)", "fail"), ("range(ordered_on)", "fail"), ("range(changed_at)", "pass"),
        ("freshness(changed_at)", "fail"), ("custom_sql", "fail"), ("reconcile", "pass")]
    observed = {q["name"]: q["observed"] for q in bad.tables[0].quality}
    assert (observed["range(amount)"], observed["not_null(amount)"], observed["custom_sql"]) == (1, 1, 1)
    sample = next(q for q in bad.tables[0].quality if q["name"] == "range(amount)")["sample"][0]
    assert sample["amount"] == "-1.00" and sample["order_id"] == 401  # exact decimals kept as text


def test_incremental_window_counted_on_the_server(ingest_env: Path, postgres_db) -> None:
    postgres_db.execute(TABLE)
    config = write_source(ingest_env, postgres_db, "  - name: Order Lines\n    mode: incremental\n"
                                                   "    cursor: changed_at\n    reconcile: true\n"
                                                   "    filter: [{column: Status, op: '=', value: open}]\n")
    first = run_source(config, actor="ana").tables[0].quality[0]
    assert (first["status"], first["observed"]) == ("pass", 200)
    postgres_db.execute("""UPDATE "Order Lines" SET changed_at = now() WHERE "Order ID" IN (2, 3, 4)""")
    second = run_source(config, actor="ana").tables[0].quality[0]
    assert (second["status"], second["observed"], second["threshold"]["source_rows"]) == ("pass", 2, 2)
    preview = preview_source(config, actor="ana", limit=10).record.tables[0].quality[0]
    assert (preview["status"], preview["observed"]) == ("pass", 10)


def test_schema_change_on_postgres(ingest_env: Path, postgres_db) -> None:
    postgres_db.execute(TABLE)
    config = write_source(ingest_env, postgres_db, "  - {name: Order Lines, mode: full}\n")
    run_source(config, actor="ana")
    postgres_db.execute('ALTER TABLE "Order Lines" ADD COLUMN "Note" text; ALTER TABLE "Order Lines" DROP COLUMN qty;'
                        'ALTER TABLE "Order Lines" ALTER COLUMN amount TYPE numeric(14, 2)')
    record = run_source(config, actor="ana")
    assert record.status == "success", record.error
    assert [(e["change"], e["column"], e["type"], e["previous_type"]) for e in record.tables[0].schema_changes] == [
        ("retyped", "amount", "decimal(14,2)", "decimal(12,2)"),  # dlt widened the landed column
        ("added", "note", "text", None),
        ("removed", "qty", None, "integer"),
    ]

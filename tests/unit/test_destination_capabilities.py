"""resolve_config_once: the destination's capabilities are the same as dlt's own, asked from
any thread, while the configuration behind them is resolved once instead of on every call."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dlt
from dlt.common.destination.reference import Destination
from dlt.common.normalizers.naming import snake_case, sql_cs_v1

from ingestion_core.engine.destinations import resolve_config_once


def fields(caps: Any) -> dict[str, Any]:
    return {name: getattr(caps, name) for name in caps.__dataclass_fields__}


def test_the_capabilities_are_dlts_own_from_every_thread(tmp_path):
    path = str(tmp_path / "db.duckdb")
    plain, kept = dlt.destinations.duckdb(path), resolve_config_once(dlt.destinations.duckdb(path))
    for naming in (None, snake_case.NamingConvention(), sql_cs_v1.NamingConvention()):
        expected = fields(plain.capabilities(naming=naming))
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda n: fields(kept.capabilities(naming=n)), [naming] * 8))
        assert got == [expected] * 8
    changed = kept.capabilities()
    changed.preferred_loader_file_format = "jsonl"  # what dlt's pipeline does to the caps it gets
    assert fields(kept.capabilities()) == fields(plain.capabilities())


def test_the_configuration_is_resolved_once(tmp_path, monkeypatch):
    calls: list[bool] = []
    original = Destination.configuration

    def counted(self: Any, initial_config: Any, accept_partial: bool = False) -> Any:
        calls.append(accept_partial)
        return original(self, initial_config, accept_partial=accept_partial)

    monkeypatch.setattr(Destination, "configuration", counted)
    plain = dlt.destinations.duckdb(str(tmp_path / "db.duckdb"))
    for _ in range(5):
        plain.capabilities(naming=snake_case.NamingConvention())
    assert calls == [True] * 5
    calls.clear()
    kept = resolve_config_once(dlt.destinations.duckdb(str(tmp_path / "db.duckdb")))
    for _ in range(5):
        kept.capabilities(naming=snake_case.NamingConvention())
    assert calls == [True]

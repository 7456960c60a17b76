"""The `ingest` commands that move data: their output, JSON contracts and exit codes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ingestion_core.cli.main import main
from ingestion_core.observe.records import latest_runs


@pytest.fixture
def shop(ingest_env: Path) -> Path:
    with sqlite3.connect(ingest_env / "shop.sqlite") as con:
        con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL, updated_at TEXT)")
        con.executemany("INSERT INTO orders VALUES (?, ?, ?)",
                        [(i, i / 2, f"2024-01-{i % 28 + 1:02d}") for i in range(300)])
    (ingest_env / "configs" / "sources" / "shop.yaml").write_text(
        "name: shop\nowner: market-de\nsource: {type: sqlite, path: shop.sqlite}\nretries: {attempts: 1}\n"
        "tables:\n  - {name: orders, mode: incremental, cursor: updated_at}\n"
    )
    return ingest_env


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def test_run_prints_the_run_id_and_record_and_exits_0(shop: Path, capsys) -> None:
    code, out = run_cli(capsys, "run", "shop")
    assert code == 0
    run = latest_runs()[0]
    assert run["run_id"] in out and f"{run['run_id']}.json" in out
    assert "orders: success, 300 rows" in out
    assert run["trigger"] == "cli" and run["actor"]


def test_run_json_and_partial_exit_code(shop: Path, capsys) -> None:
    config = shop / "configs" / "sources" / "shop.yaml"
    config.write_text(config.read_text() + "  - {name: gone, mode: full}\n")
    code, out = run_cli(capsys, "--actor", "ops-bot", "run", "shop", "--json")
    result = json.loads(out)
    assert code == 3 and result["status"] == "partial" and result["exit_code"] == 3
    assert Path(result["record_path"]).exists()
    assert result["actor"] == "ops-bot"
    assert {t["name"]: t["status"] for t in result["tables"]} == {"orders": "success", "gone": "failed"}


def test_run_failed_exit_code_1(shop: Path, capsys) -> None:
    code, out = run_cli(capsys, "run", "shop", "--tables", "orders", "--destination", "local_duckdb")
    assert code == 0
    (shop / "shop.sqlite").unlink()
    sqlite3.connect(shop / "shop.sqlite").close()
    code, out = run_cli(capsys, "run", "shop")
    assert code == 1 and "what to do:" in out


def test_preview_json_contract(shop: Path, capsys) -> None:
    code, out = run_cli(capsys, "preview", "shop", "--limit", "7", "--json")
    result = json.loads(out)
    assert code == 0
    assert result["source"] == "shop" and isinstance(result["duration_s"], float)
    table = result["tables"][0]
    assert table["name"] == "orders" and table["rows"] == 7 and len(table["sample"]) == 7
    assert {"name": "amount", "type": "double", "nullable": True} in table["columns"]


def test_a_preview_without_json_does_not_read_sample_rows_it_would_not_print(shop: Path, capsys,
                                                                           monkeypatch) -> None:
    from ingestion_core.pipeline import runner

    asked = []
    real = runner.preview_source
    monkeypatch.setattr(runner, "preview_source", lambda *a, **k: asked.append(k["sample_rows"]) or real(*a, **k))
    code, out = run_cli(capsys, "preview", "shop", "--limit", "3")
    assert code == 0 and "orders: success, 3 rows" in out and asked == [0]
    config = runner.ConfigStore().load_source("shop").config
    assert real(config, actor="ana", sample_rows=0).samples == {}  # and the preview file is not opened for them


def test_preview_of_a_yaml_path(shop: Path, capsys) -> None:
    code, _ = run_cli(capsys, "preview", str(shop / "configs" / "sources" / "shop.yaml"), "--limit", "3")
    assert code == 0


def test_runs_lists_and_filters(shop: Path, capsys) -> None:
    run_cli(capsys, "preview", "shop", "--limit", "3")
    _, ran = run_cli(capsys, "run", "shop", "--json")
    code, out = run_cli(capsys, "runs", "--json")
    runs = json.loads(out)
    assert code == 0 and [r["kind"] for r in runs] == ["run", "preview"]
    assert runs[0]["started_at"] == json.loads(ran)["started_at"]  # one way of writing a time: ISO 8601, Z
    assert all(r["started_at"].endswith("Z") and "T" in r["started_at"] for r in runs)
    _, out = run_cli(capsys, "runs", "--kind", "preview", "--json")
    assert [r["kind"] for r in json.loads(out)] == ["preview"]
    _, out = run_cli(capsys, "runs", "--status", "failed", "--json")
    assert json.loads(out) == []


def test_test_connection_exit_codes(shop: Path, capsys) -> None:
    code, out = run_cli(capsys, "test-connection", "shop", "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    (shop / "configs" / "sources" / "shop.yaml").write_text(
        (shop / "configs" / "sources" / "shop.yaml").read_text().replace("shop.sqlite", "missing/dir/x.sqlite"))
    code, out = run_cli(capsys, "test-connection", "shop")
    assert code == 1 and out.startswith("failed:") and "what to do:" in out


def test_a_mistyped_sqlite_path_is_not_found_and_no_file_appears(shop: Path, capsys) -> None:
    """QA: a wrong path 'connected', created an empty file, then every run failed with 'no such table'."""
    config = shop / "configs" / "sources" / "shop.yaml"
    config.write_text(config.read_text().replace("shop.sqlite", "nope.sqlite"))
    for command in (["test-connection", "shop"], ["preview", "shop", "--limit", "3"], ["run", "shop"]):
        code, out = run_cli(capsys, *command)
        assert code == 1, command
        assert f"SQLite file not found: {shop / 'nope.sqlite'}" in out, (command, out)
        assert "relative to the project folder" in out and "check source.path" in out, (command, out)
        assert "no such table" not in out.lower() and "NoSuchTableError" not in out
        assert not (shop / "nope.sqlite").exists(), command


def test_unknown_source_is_an_error_naming_the_choices(shop: Path, capsys) -> None:
    assert main(["run", "shoop"]) == 1
    err = capsys.readouterr().err
    assert "no source named 'shoop'" in err and "(there are: shop)" in err


def test_prune_removes_old_records_logs_and_previews_never_configs(shop: Path, capsys) -> None:
    run_cli(capsys, "preview", "shop", "--limit", "3")
    run_cli(capsys, "run", "shop")
    old = time.time() - 40 * 86400
    for root in (shop / "runs", shop / ".ingest" / "logs", shop / ".ingest" / "preview"):
        for path in root.rglob("*"):
            os.utime(path, (old, old))
    run_cli(capsys, "run", "shop")  # a fresh run stays
    code, out = run_cli(capsys, "prune", "--older-than", "30d")
    assert code == 0 and "removed" in out
    assert len(latest_runs()) == 1
    assert not (shop / ".ingest" / "preview").exists() or not any((shop / ".ingest" / "preview").iterdir())
    assert (shop / "configs" / "sources" / "shop.yaml").exists()


def test_sigterm_cancels_the_run_and_records_it(shop: Path) -> None:
    """A run stopped with SIGTERM exits 130, its record says cancelled, earlier data stays."""
    assert main(["run", "shop"]) == 0
    # the source's chunk arrives only once the test has sent SIGTERM (a slow server): the run stops at
    # that next chunk, as a cancel promises, and never loads it
    released = shop / "chunk-released"
    slow = textwrap.dedent(f"""
        import os, time, sys
        import ingestion_core.engine.sources.sql as sql
        original = sql.SqlSource.resource
        def slow_chunk(item):
            deadline = time.monotonic() + 120
            while not os.path.exists({str(released)!r}) and time.monotonic() < deadline:
                time.sleep(0.05)
            return item
        def resource(self, ctx):
            return original(self, ctx).add_map(slow_chunk)
        sql.SqlSource.resource = resource
        from ingestion_core.cli.main import main
        sys.exit(main(["run", "shop", "--tables", "orders"]))
    """)
    with sqlite3.connect(shop / "shop.sqlite") as con:
        con.execute("INSERT INTO orders VALUES (1000, 1.0, '2024-12-31')")
    child = subprocess.Popen([sys.executable, "-c", slow], env=os.environ.copy(), cwd=shop, stderr=subprocess.PIPE,
                             text=True)
    deadline = time.monotonic() + 120
    while True:  # SIGTERM only once the run reads (before, the CLI's handler may not be installed yet)
        running = [r for r in latest_runs() if r["status"] == "running"]
        if running and running[0]["tables"][0]["status"] == "running":
            break
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            pytest.fail(f"the run never reached its table (exit code {child.poll()})")
        time.sleep(0.2)
    child.send_signal(signal.SIGTERM)
    said = []  # the chunk is released once the run has taken the cancel (its note on stderr), never before
    while not any("cancelling" in line for line in said) and (line := child.stderr.readline()):
        said.append(line)
    released.touch()
    _, rest = child.communicate(timeout=120)  # reads stderr to the end: a full pipe cannot block the child
    assert child.returncode == 130, "".join(said) + rest
    latest = latest_runs()[0]
    assert latest["status"] == "cancelled" and latest["tables"][0]["status"] == "cancelled"
    import duckdb

    with duckdb.connect(str(shop / ".ingest" / "local_duckdb.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM shop.orders").fetchone() == (300,)


def test_run_refused_while_another_run_holds_the_source(shop: Path) -> None:
    """`ingest run` in its own process (as a Databricks job or cron runs it) respects the lock."""
    from ingestion_core.pipeline.run_control import source_lock

    with source_lock("shop", run_id="20240101T000000-shop-held00"):
        child = subprocess.run([sys.executable, "-m", "ingestion_core", "run", "shop"], env=os.environ.copy(),
                               cwd=shop, capture_output=True, text=True, timeout=300)
    assert child.returncode == 1
    assert "shop is already running: run 20240101T000000-shop-held00" in child.stderr
    assert "ingest cancel 20240101T000000-shop-held00" in child.stderr
    assert latest_runs() == []  # nothing ran, nothing recorded


def test_refresh_state_and_reset_state_commands(shop: Path, capsys) -> None:
    assert main(["run", "shop"]) == 0
    with sqlite3.connect(shop / "shop.sqlite") as con:
        con.execute("DELETE FROM orders WHERE id >= 200")
    code, out = run_cli(capsys, "run", "shop", "--refresh", "orders")
    assert code == 0 and "orders: success, 200 rows" in out
    import duckdb

    with duckdb.connect(str(shop / ".ingest" / "local_duckdb.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM shop.orders").fetchone() == (200,)

    code, out = run_cli(capsys, "state", "shop", "--json")
    [state] = json.loads(out)
    assert code == 0 and state["table"] == "orders" and state["cursor_value"] == "2024-01-28"
    code, out = run_cli(capsys, "state", "shop")
    assert out.splitlines()[0].split()[:3] == ["TABLE", "MODE", "CURSOR"] and "2024-01-28" in out

    assert main(["reset-state", "shop", "orders"]) == 1  # no terminal to confirm on: --yes is needed
    assert "add --yes" in capsys.readouterr().err
    code, out = run_cli(capsys, "--actor", "ana", "reset-state", "shop", "orders", "--yes")
    assert code == 0 and "reloads it from initial_value" in out
    assert json.loads(run_cli(capsys, "state", "shop", "--json")[1])[0]["cursor_value"] is None
    code, out = run_cli(capsys, "run", "shop")
    assert code == 0 and "orders: success, 200 rows" in out


def test_refresh_and_cancel_errors_name_the_fix(shop: Path, capsys) -> None:
    assert main(["run", "shop", "--tables", "orders", "--refresh", "gone"]) == 1
    assert "cannot refresh gone: this run of shop loads only orders" in capsys.readouterr().err
    assert main(["cancel", "20240101T000000-shop-none00"]) == 1
    assert "no run with id '20240101T000000-shop-none00'" in capsys.readouterr().err
    assert main(["reset-state", "shop", "ordrs", "--yes"]) == 1
    assert "shop has no table 'ordrs'; tables with incremental state (a cursor): orders" in capsys.readouterr().err

"""A user of the Excel framework moves in: their job sheet and secrets.toml, imported with
``ingest import-excel --write``, validated, and run with ``ingest run`` against real servers
started here: PostgreSQL (its password where the framework kept it: ``DLT_POSTGRESQL_PASSWORD``),
a local API that answers only to its own key header and the section's params, and Azurite as the
ADLS of the ``[destination.filesystem]`` section (Parquet in date folders)."""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import openpyxl
import pyarrow.parquet as pq
import pytest
import requests
import yaml

from ingestion_core.cli.main import main
from tests.http_api import Handler
from tests.security.scanner import fake_secret

pytestmark = pytest.mark.services

HEADER = "x-cg-demo-api-key"
PAGE_SIZE = 2
COINS = [{"id": f"coin-{i}", "symbol": f"c{i}", "current_price": i * 1.5} for i in range(5)]


@dataclass
class CoinApi:
    key: str
    url: str = ""
    refused: list[str] = field(default_factory=list)
    answered: list[dict[str, str]] = field(default_factory=list)


class _Handler(Handler):
    """The test API's handler (keep-alive, TCP_NODELAY, quiet) answering as CoinGecko would."""

    server: Any

    def do_GET(self) -> None:
        api: CoinApi = self.server.api
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        if self.headers.get(HEADER) != api.key:
            api.refused.append(f"{split.path}: no {HEADER}")
            return self._send(401, {"error": f"missing or wrong {HEADER} header"})
        if split.path != "/api/v3/coins/markets" or query.get("vs_currency") != "usd" \
                or query.get("per_page") != str(PAGE_SIZE):
            api.refused.append(f"{split.path}?{split.query}")
            return self._send(400, {"error": "vs_currency=usd and per_page are required"})
        api.answered.append(query)
        page = int(query.get("page", "1"))
        self._send(200, COINS[(page - 1) * PAGE_SIZE: page * PAGE_SIZE])

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def coin_api() -> Iterator[CoinApi]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.api = CoinApi(fake_secret("excel_migration_cg", "CG-"))  # type: ignore[attr-defined]
    httpd.api.url = f"http://127.0.0.1:{httpd.server_address[1]}/api/v3/"  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield httpd.api  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()


def job_sheet(path: Path) -> Path:
    header = ["source_type", "source_name", "table_name", "schema_name", "load_type", "watermark_column",
              "last_watermark", "api_endpoint", "enabled", "pagination_type", "auth_type", "page_size", "rate_limit",
              "last_run_date", "last_run_status"]
    rows = [
        ["postgresql", "postgresql", "orders", "public", "INCREMENTAL", "updated_at", datetime(2024, 1, 2), None, "Y",
         None, None, None, None, datetime(2024, 1, 2, 6), "SUCCESS"],
        ["api", "coingecko", "markets", None, "FULL", None, None, "coins/markets", "Y", "page", "api_key",
         PAGE_SIZE, "20/s", datetime(2024, 1, 2, 6), "FAILED"],
    ]
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "SourceConfig"
    for values in [header, *rows]:
        sheet.append(values)
    workbook.save(path)
    return path


def test_the_framework_jobs_import_validate_and_run(ingest_env: Path, tmp_path: Path, postgres_db: Any,
                                                    coin_api: CoinApi, azurite: Any, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    postgres_db.execute("CREATE TABLE orders (id int PRIMARY KEY, amount numeric(10, 2), updated_at timestamp);"
                        "INSERT INTO orders VALUES (1, 10.50, '2024-01-01'), (2, 20.00, '2024-01-03'), "
                        "(3, 30.25, '2024-01-04')")
    container = azurite.create_container("adls")
    framework = tmp_path / "framework"
    (framework / ".dlt").mkdir(parents=True)
    toml = framework / ".dlt" / "secrets.toml"
    toml.write_text(f"""
[sources.postgresql]
host = "{postgres_db.host}"
port = {postgres_db.port}
database = "{postgres_db.name}"
username = "{postgres_db.user}"

[sources.coingecko]
base_url = "{coin_api.url}"
{HEADER} = "{coin_api.key}"

[sources.coingecko.params]
vs_currency = "usd"
per_page = 100

[destination.filesystem]
account_name = "{azurite.account_name}"
container = "{container}"
folder = "raw"
account_key = "{azurite.account_key}"
blob_endpoint = "{azurite.blob_endpoint}"
""", encoding="utf-8")
    # the framework's own places: the password in DLT_<SOURCE>_<KEY>, the rest in its secrets.toml
    monkeypatch.setenv("DLT_POSTGRESQL_PASSWORD", postgres_db.password)
    monkeypatch.setenv("INGEST_SECRETS_FILE", str(toml))

    sheet = job_sheet(framework / "ingestion_config.xlsx")
    assert main(["import-excel", str(sheet), "--secrets", str(toml), "--write"]) == 0
    out, err = capsys.readouterr()
    assert "dropped" not in out
    assert "1 destination file(s), 2 source file(s) written, 0 row(s) skipped, 0 value(s) dropped" in err
    assert main(["validate", "--check-secrets"]) == 0
    capsys.readouterr()
    api = yaml.safe_load((ingest_env / "configs" / "sources" / "coingecko.yaml").read_text())
    assert api["source"]["auth"]["name"] == HEADER and api["destination"] == "filesystem"

    # the API refuses what the import used to make: the key in Authorization and no params
    assert requests.get(f"{coin_api.url}coins/markets", headers={"Authorization": coin_api.key},
                        timeout=10).status_code == 401
    coin_api.refused.clear()

    assert main(["run", "postgresql"]) == 0
    assert main(["run", "coingecko"]) == 0
    capsys.readouterr()
    assert coin_api.refused == []
    assert [q["page"] for q in coin_api.answered] == ["1", "2", "3", "4"]  # stops at the empty page 4

    today = datetime.now(UTC).strftime("%Y/%m/%d")
    blobs = azurite.keys(container, "raw/")
    orders = [b for b in blobs if re.fullmatch(rf"raw/postgresql/orders/{today}/.+\.parquet", b)]
    markets = [b for b in blobs if re.fullmatch(rf"raw/coingecko/markets/{today}/.+\.parquet", b)]
    assert orders and markets
    rows = [r for b in orders for r in pq.read_table(io.BytesIO(azurite.read(container, b))).to_pylist()]
    assert sorted(r["id"] for r in rows) == [2, 3]  # from the sheet's last_watermark on
    coins = [r for b in markets for r in pq.read_table(io.BytesIO(azurite.read(container, b))).to_pylist()]
    assert sorted(r["id"] for r in coins) == [c["id"] for c in COINS]
    written = "".join(p.read_text() for p in (ingest_env / "configs").rglob("*.yaml"))
    assert coin_api.key not in written and postgres_db.password not in written

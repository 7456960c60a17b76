"""Files on object stores, against real emulators on 127.0.0.1: S3 (moto's server, signatures
checked) and Azure Blob (Azurite). The same tests as the local-disk ones (test_engine_files.py):
each format lands with exact rows, preview limits, incremental on modification_date, the filesystem
destination (Parquet in the date layout, Delta with merge), a wrong secret key, test-connection.
gs:// is covered at the unit level only (no emulator)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingestion_core.config.store import ConfigStore
from ingestion_core.engine.sources import test_connection as check_connection
from ingestion_core.onboarding.discovery import list_files
from ingestion_core.pipeline.runner import preview_source, run_source

if TYPE_CHECKING:  # loaded by pytest as a plugin (a plain import here would skip assert rewriting)
    from tests.objectstores import Azurite, S3Server

pytest_plugins = ["tests.services", "tests.objectstores"]
pytestmark = pytest.mark.services


@dataclass
class Store:
    """One bucket (S3) or container (Azure) of an emulator, behind one interface."""

    kind: str  # s3 | az
    server: S3Server | Azurite
    bucket: str

    def url(self, folder: str) -> str:
        return f"{self.kind}://{self.bucket}/{folder}"

    def upload(self, key: str, data: bytes | str) -> None:
        self.server.upload(self.bucket, key, data)

    def keys(self, prefix: str = "") -> list[str]:
        return self.server.keys(self.bucket, prefix)

    def read(self, key: str) -> bytes:
        return self.server.read(self.bucket, key)

    def credentials(self, secret: str | None = None) -> dict[str, str]:
        return self.server.credentials(self.kind, secret)

    def wrong_secret(self) -> str:
        # Azure keys are base64 (the client signs with them): a wrong one must still decode
        return base64.b64encode(secrets.token_bytes(64)).decode() if self.kind == "az" else secrets.token_urlsafe(30)

    def storage_options(self) -> dict[str, str]:
        return self.server.storage_options()

    @property
    def secret(self) -> str:
        return self.server.secret


@pytest.fixture(params=["s3", "az"])
def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        return Store("s3", server, server.create_bucket("landing"))
    server = request.getfixturevalue("azurite")
    return Store("az", server, server.create_container("landing"))


@pytest.fixture
def landing(store: Store) -> Store:
    store.upload("in/stores.csv", "store_id;city\n1;Berlin\n2;Paris\n3;Oslo\n")
    for day in (1, 2):
        lines = [json.dumps({"id": day * 100 + i, "kind": "click", "meta": {"page": f"/p{i}"}}) for i in range(50)]
        store.upload(f"in/events/2024-01-0{day}.jsonl", "\n".join(lines) + "\n")
    buffer = io.BytesIO()
    pq.write_table(pa.table({"sku": ["a", "b"], "price": [1.5, 2.25]}), buffer)
    store.upload("in/prices.parquet", buffer.getvalue())
    return store


TABLES = (
    "  - {name: stores, glob: stores.csv, format: csv, csv: {delimiter: ';'}}\n"
    "  - {name: events, glob: 'events/*.jsonl', format: jsonl}\n"
    "  - {name: prices, glob: prices.parquet, format: parquet}\n"
)


def write_source(store: Store, tables: str, destination: str = "local_duckdb",
                 credentials: dict[str, str] | None = None) -> Any:
    credentials = credentials or store.credentials()
    source = {"type": "filesystem", "bucket_url": store.url("in"), "credentials": credentials}
    text = (f"name: landing\nowner: data-ops\nsource: {json.dumps(source)}\n"
            f"destination: {destination}\nretries: {{attempts: 1}}\ntables:\n{tables}")
    assert store.secret not in text  # configs hold references only
    Path(_configs(), "sources", "landing.yaml").write_text(text)
    return ConfigStore().load_source("landing").config


def write_destination(store: Store, name: str, fmt: str, **settings: Any) -> str:
    url = store.url("lake")
    destination = {"type": "filesystem", "bucket_url": url, "format": fmt, "credentials": store.credentials(),
                   **settings}
    Path(_configs(), "destinations", f"{name}.yaml").write_text(json.dumps(destination))
    return url


def _configs() -> Path:
    return Path(os.environ["INGEST_CONFIG_DIR"])


def query(project: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(project / ".ingest" / "local_duckdb.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


# --------------------------------------------------------------------------- sources


def test_each_format_lands(landing: Store, ingest_env: Path) -> None:
    record = run_source(write_source(landing, TABLES), actor="ana")
    assert record.status == "success", record.error
    assert {t.name: t.rows for t in record.tables} == {"stores": 3, "events": 100, "prices": 2}
    assert query(ingest_env, "SELECT store_id, city FROM landing.stores ORDER BY store_id") == [
        (1, "Berlin"), (2, "Paris"), (3, "Oslo")]
    assert query(ingest_env, "SELECT count(*), min(id), max(id) FROM landing.events") == [(100, 100, 249)]
    assert query(ingest_env, "SELECT meta__page FROM landing.events WHERE id = 101") == [("/p1",)]
    assert query(ingest_env, "SELECT sku, price FROM landing.prices ORDER BY sku") == [("a", 1.5), ("b", 2.25)]


def test_preview_reads_first_rows_only(landing: Store) -> None:
    result = preview_source(write_source(landing, TABLES), actor="ana", limit=10)
    assert result.record.status == "success", result.record.error
    assert {t.name: t.rows for t in result.record.tables} == {"stores": 3, "events": 10, "prices": 2}
    assert len(result.samples["events"]) == 10
    assert result.samples["stores"][0] == {"store_id": 1, "city": "Berlin"}


def test_incremental_on_modification_date_loads_new_files_only(landing: Store, ingest_env: Path) -> None:
    tables = "  - {name: events, glob: 'events/*.jsonl', format: jsonl, mode: incremental, cursor: modification_date}\n"
    config = write_source(landing, tables)
    first = run_source(config, actor="ana")
    assert first.status == "success", first.error
    assert first.tables[0].rows == 100
    landing.upload("in/events/2024-01-03.jsonl", json.dumps({"id": 999, "kind": "view", "meta": {"page": "/x"}}) + "\n")
    second = run_source(config, actor="ana")
    assert second.status == "success", second.error
    assert second.tables[0].rows == 1
    assert query(ingest_env, "SELECT count(*), count(DISTINCT id), max(id) FROM landing.events") == [(101, 101, 999)]


def test_azure_connection_string_by_reference(azurite: Azurite) -> None:
    store = Store("az", azurite, azurite.create_container("cs"))
    store.upload("in/stores.csv", "store_id;city\n1;Berlin\n")
    config = write_source(store, TABLES.splitlines(keepends=True)[0],
                          credentials=azurite.connection_string_credentials("az_cs"))
    assert check_connection(config).ok
    record = run_source(config, actor="ana")
    assert record.status == "success", record.error
    assert record.tables[0].rows == 1


# --------------------------------------------------------------------------- destinations


def test_parquet_files_destination_uses_date_layout(landing: Store) -> None:
    write_destination(landing, "lake", "parquet")
    record = run_source(write_source(landing, TABLES, destination="lake"), actor="ana")
    assert record.status == "success", record.error
    stores = [k for k in landing.keys("lake/landing/stores/") if k.endswith(".parquet")]
    assert len(stores) == 1
    *folders, year, month, day, name = stores[0].split("/")  # <load_id>.<file_id>.parquet
    assert folders == ["lake", "landing", "stores"]
    load_id = re.fullmatch(r"(\d+\.\d+)\.\w+\.parquet", name)
    assert load_id, name
    assert (year, month, day) == tuple(datetime.fromtimestamp(float(load_id[1]), UTC).strftime("%Y %m %d").split())
    table = pq.read_table(io.BytesIO(landing.read(stores[0])))
    assert sorted(zip(table["store_id"].to_pylist(), table["city"].to_pylist(), strict=True)) == [
        (1, "Berlin"), (2, "Paris"), (3, "Oslo")]
    events = [k for k in landing.keys("lake/landing/events/") if k.endswith(".parquet")]
    assert sum(pq.read_table(io.BytesIO(landing.read(k))).num_rows for k in events) == 100


def test_delta_destination_merges_on_primary_key(store: Store) -> None:
    import deltalake

    lake = write_destination(store, "delta_lake", "delta")
    store.upload("in/stores.csv", "store_id;city\n1;Berlin\n2;Paris\n")
    tables = ("  - {name: stores, glob: stores.csv, format: csv, csv: {delimiter: ';'}, "
              "mode: merge, primary_key: store_id}\n")
    config = write_source(store, tables, destination="delta_lake")
    first = run_source(config, actor="ana")
    assert first.status == "success", first.error
    store.upload("in/stores.csv", "store_id;city\n2;Lyon\n3;Oslo\n")
    second = run_source(config, actor="ana")
    assert second.status == "success", second.error
    table = deltalake.DeltaTable(f"{lake}/landing/stores", storage_options=store.storage_options()).to_pyarrow_table()
    rows = sorted(zip(table["store_id"].to_pylist(), table["city"].to_pylist(), strict=True))
    assert rows == [(1, "Berlin"), (2, "Lyon"), (3, "Oslo")]


def _stores_by_folder(store: Store) -> dict[str, list[tuple[int, str]]]:
    """The rows of each dated folder of the stores table: {'2026/01/01': [(1, 'Berlin'), ...]}."""
    folders: dict[str, list[tuple[int, str]]] = {}
    for key in store.keys("lake/landing/stores/"):
        if key.endswith(".parquet"):
            table = pq.read_table(io.BytesIO(store.read(key)))
            folder = "/".join(key.split("/")[3:-1])
            folders.setdefault(folder, []).extend(zip(table["store_id"].to_pylist(), table["city"].to_pylist(),
                                                      strict=True))
    return {folder: sorted(rows) for folder, rows in sorted(folders.items())}


def test_keep_history_full_loads_leave_the_earlier_dated_folders(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import pendulum

    from ingestion_core.engine.destinations import filesystem

    write_destination(store, "lake", "parquet", keep_history=True)
    tables = "  - {name: stores, glob: stores.csv, format: csv, csv: {delimiter: ';'}, mode: full}\n"
    config = write_source(store, tables, destination="lake")
    loads = [("2026-01-01T23:59:00", "store_id;city\n1;Berlin\n2;Paris\n"),
             ("2026-01-02T08:00:00", "store_id;city\n2;Lyon\n3;Oslo\n"),
             ("2026-01-02T09:00:00", "store_id;city\n3;Oslo\n4;Rome\n")]  # the same day again
    folders = []
    for moment, csv in loads:
        monkeypatch.setattr(filesystem, "run_moment", lambda m=moment: pendulum.parse(m))
        store.upload("in/stores.csv", csv)
        record = run_source(config, actor="ana")
        assert record.status == "success", record.error
        assert record.tables[0].mode == "full" and record.tables[0].rows == 2
        folders.append(_stores_by_folder(store))
    assert folders[0] == {"2026/01/01": [(1, "Berlin"), (2, "Paris")]}
    assert folders[1] == {"2026/01/01": [(1, "Berlin"), (2, "Paris")], "2026/01/02": [(2, "Lyon"), (3, "Oslo")]}
    # a second full load on one day replaces that day's folder, and only that one
    assert folders[2] == {"2026/01/01": [(1, "Berlin"), (2, "Paris")], "2026/01/02": [(3, "Oslo"), (4, "Rome")]}


def test_without_keep_history_a_full_load_deletes_the_earlier_dated_folders(store: Store,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import pendulum

    from ingestion_core.engine.destinations import filesystem

    write_destination(store, "lake", "parquet")
    config = write_source(store, "  - {name: stores, glob: stores.csv, format: csv, csv: {delimiter: ';'}}\n",
                          destination="lake")
    store.upload("in/stores.csv", "store_id;city\n1;Berlin\n")
    assert run_source(config, actor="ana").status == "success"
    first = _stores_by_folder(store)
    monkeypatch.setattr(filesystem, "run_moment", lambda: pendulum.parse("2099-01-01"))  # not used: dlt's own dates
    assert run_source(config, actor="ana").status == "success"
    second = _stores_by_folder(store)
    assert len(first) == len(second) == 1 and sum(map(len, second.values())) == 1


# --------------------------------------------------------------------------- failures and test-connection


def test_wrong_secret_key_is_a_recorded_error_without_the_key(landing: Store, ingest_env: Path) -> None:
    wrong = landing.wrong_secret()
    record = run_source(write_source(landing, TABLES, credentials=landing.credentials(wrong)), actor="ana")
    assert record.status == "failed"
    for table in record.tables:
        assert table.status == "failed" and table.error is not None
        refused = r"\b403\b|Forbidden|SignatureDoesNotMatch|failed to authenticate"
        assert re.search(refused, table.error.message), table.error
        assert "refused the credentials" in table.error.hint and "secret" in table.error.hint, table.error.hint
        assert wrong not in table.error.message + table.error.hint
    assert record.error is not None and wrong not in record.error.message
    # nowhere on disk but the secrets file: run record, run logs, dlt's pipeline folders (state, trace)
    written = [p for p in ingest_env.rglob("*") if p.is_file() and p.name != "secrets.toml"]
    assert Path(record.log_path) in written
    for path in written:
        assert wrong.encode() not in path.read_bytes(), path


def test_connection_ok_and_refused(landing: Store) -> None:
    report = check_connection(write_source(landing, TABLES))
    assert report.ok, report
    assert report.details["entries"] == 3  # stores.csv, prices.parquet, events/

    wrong = landing.wrong_secret()
    report = check_connection(write_source(landing, TABLES, credentials=landing.credentials(wrong)))
    assert not report.ok
    assert "refused the credentials" in report.reason and "secret" in report.mitigation, report
    assert wrong not in json.dumps(report.as_dict())

    config = write_source(landing, TABLES)
    config.source.bucket_url = f"{landing.kind}://missing-{secrets.token_hex(3)}/in"
    report = check_connection(config)
    assert not report.ok and "not found" in report.reason, report


def ambient_environment(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own credentials: the variables boto3 and adlfs read when a config has none."""
    if store.kind == "s3":
        server: Any = store.server
        for name, value in {"AWS_ACCESS_KEY_ID": server.access_key_id, "AWS_SECRET_ACCESS_KEY": server.secret,
                            "AWS_ENDPOINT_URL": server.endpoint_url, "AWS_DEFAULT_REGION": server.region}.items():
            monkeypatch.setenv(name, value)
    else:
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", store.server.connection_string)  # type: ignore[union-attr]


def write_source_without_credentials(store: Store, tables: str) -> Any:
    source = {"type": "filesystem", "bucket_url": store.url("in")}
    Path(_configs(), "sources", "landing.yaml").write_text(
        f"name: landing\nowner: data-ops\nsource: {json.dumps(source)}\nretries: {{attempts: 1}}\ntables:\n{tables}")
    return ConfigStore().load_source("landing").config


def test_credentials_off_use_the_machines_own(landing: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: credentials off gave AttributeError 'NoneType' ... to_s3fs_credentials with a dlt file:line trail."""
    config = write_source_without_credentials(landing, TABLES)
    report = check_connection(config)
    assert not report.ok and "Credentials are off and this machine has no credentials" in report.reason, report
    assert "turn Credentials on" in report.mitigation and "AttributeError" not in report.reason, report
    assert ".py:" not in report.mitigation, report

    ambient_environment(landing, monkeypatch)
    report = check_connection(config)
    assert report.ok and report.details["entries"] == 3, report
    assert [f.path for f in list_files(config, "*.csv")] == ["stores.csv"]  # the form's "Show matching files"
    preview = preview_source(config, actor="ana", limit=10)
    assert preview.record.status == "success", preview.record.error
    assert {t.name: t.rows for t in preview.record.tables} == {"stores": 3, "events": 10, "prices": 2}
    record = run_source(config, actor="ana")
    assert record.status == "success", record.error
    assert {t.name: t.rows for t in record.tables} == {"stores": 3, "events": 100, "prices": 2}


# --------------------------------------------------------------------------- unit level (no emulator)


def test_gcs_credentials_from_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from dlt.common.configuration.specs import GcpServiceAccountCredentialsWithoutDefaults

    from ingestion_core.config.models.sources import FileCredentials
    from ingestion_core.storage.object_stores import file_credentials

    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n"
    monkeypatch.setenv("SECRETS__GCS__KEY", pem.replace("\n", "\\n"))  # as pasted from the JSON key file
    model = FileCredentials(gcp_project_id="market-de", gcp_client_email="ingest@market-de.iam.gserviceaccount.com",
                            gcp_private_key="${secrets.gcs.key}")
    credentials = file_credentials(model, "gs://market-de-landing/in")
    assert isinstance(credentials, GcpServiceAccountCredentialsWithoutDefaults)
    assert credentials.project_id == "market-de"
    assert credentials.client_email == "ingest@market-de.iam.gserviceaccount.com"
    assert credentials.private_key == pem
    assert file_credentials(model, "gcs://market-de-landing/in").project_id == "market-de"


def test_credentials_follow_the_url_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    from dlt.common.configuration.specs import AwsCredentials

    from ingestion_core.config.models.sources import FileCredentials
    from ingestion_core.storage.object_stores import file_credentials

    monkeypatch.setenv("SECRETS__T__KEY", "c2VjcmV0")
    s3 = file_credentials(FileCredentials(aws_access_key_id="AKID", aws_secret_access_key="${secrets.t.key}",
                                          endpoint_url="http://127.0.0.1:9000"), "s3://b/in")
    assert isinstance(s3, AwsCredentials)
    assert s3.to_s3fs_credentials()["endpoint_url"] == "http://127.0.0.1:9000"
    assert s3.to_object_store_rs_credentials()["aws_allow_http"] == "true"

    # endpoint_url is the blob endpoint on az:// (Azurite, private endpoints)
    az = file_credentials(FileCredentials(azure_storage_account_name="acct", endpoint_url="http://127.0.0.1:10000/acct",
                                          azure_storage_account_key="${secrets.t.key}"), "az://c/in")
    assert az.to_adlfs_credentials()["connection_string"] == (
        "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=c2VjcmV0;BlobEndpoint=http://127.0.0.1:10000/acct;")
    assert az.to_object_store_rs_credentials() == {"account_name": "acct", "account_key": "c2VjcmV0",
                                                   "endpoint": "http://127.0.0.1:10000/acct", "allow_http": "true"}
    plain = file_credentials(FileCredentials(azure_storage_account_name="acct",
                                             azure_storage_account_key="${secrets.t.key}"), "az://c/in")
    assert plain.to_adlfs_credentials()["account_key"] == "c2VjcmV0"
    assert "connection_string" not in plain.to_adlfs_credentials()


def test_azure_connection_string_parsing() -> None:
    from ingestion_core.storage.object_stores import _azure_from_connection_string

    azurite = _azure_from_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5==;"
        "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;")
    assert (azurite.azure_storage_account_name, azurite.azure_storage_account_key) == ("devstoreaccount1", "a2V5==")
    assert azurite.azure_blob_endpoint == "http://127.0.0.1:10000/devstoreaccount1"
    cloud = _azure_from_connection_string(
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net")
    assert cloud.azure_blob_endpoint is None and cloud.to_adlfs_credentials()["account_key"] == "a2V5"
    sas = _azure_from_connection_string("BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=sv=1&sig=x")
    assert (sas.azure_storage_account_name, sas.azure_storage_sas_token) == ("acct", "sv=1&sig=x")
    dev = _azure_from_connection_string("UseDevelopmentStorage=true")
    assert dev.azure_blob_endpoint == "http://127.0.0.1:10000/devstoreaccount1"


def test_gcs_with_credentials_off_and_none_on_the_machine_says_how_to_give_access(
        ingest_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(ingest_env / "no-gcloud"))  # no gcloud login of this user
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")  # not on Google Cloud: the metadata server is not there
    source = {"type": "filesystem", "bucket_url": "gs://market-de-landing/in"}
    Path(_configs(), "sources", "landing.yaml").write_text(
        f"name: landing\nowner: data-ops\nsource: {json.dumps(source)}\ntables:\n{TABLES}")
    report = check_connection(ConfigStore().load_source("landing").config)
    assert not report.ok and report.reason.startswith(
        "Credentials are off and this machine has no credentials for gs://market-de-landing/in"), report
    assert "GOOGLE_APPLICATION_CREDENTIALS" in report.mitigation and "turn Credentials on" in report.mitigation

"""A local Databricks workspace for the tests: the subset of the REST API the product uses, on
127.0.0.1 in the test process (``http.server`` in a thread, TCP_NODELAY), with state.

The real databricks-sdk client talks to it (``WorkspaceClient(host=fake.url, token=...)``):

- discovery and auth: ``/.well-known/databricks-config``, OAuth M2M (OIDC discovery, a
  client-credentials token endpoint), personal access tokens; a wrong credential is a 401.
- ``/api/2.0/preview/scim/v2/Me``, ``/api/2.0/sql/warehouses/{id}``.
- Jobs 2.2: create, reset, list, get, run-now, runs/get, runs/list, runs/cancel.
- Secrets: scopes create / list, put, get, list, delete.
- Files (Unity Catalog volumes): upload, download, metadata, directory create / list; files live
  under ``storage/Volumes/...`` and a volume must be created first (:meth:`create_volume`).

Every request body is parsed with the SDK's own definitions and refused (400
INVALID_PARAMETER_VALUE) when a field is unknown or malformed: job settings with
``JobSettings.from_dict`` and a round trip back through ``as_dict`` (what does not survive it is
a field the SDK does not know), other bodies against the parameters of the SDK method that sends
them. Every request is logged (:attr:`FakeWorkspace.requests`) for tests to assert on.

A job run is executed by :class:`FakeCluster` when one is attached: it checks the task's wheel
is on the volume and declares the entry point, then runs that console script from a venv where
the same wheel is installed, in a subprocess, with ``/Volumes`` mapped to the fake's storage (the
FUSE mount of a real cluster) and ``DATABRICKS_HOST`` / ``DATABRICKS_TOKEN`` set (the runtime's
own credentials). Without a cluster, runs stay pending until a test calls :meth:`finish_run`.
"""

from __future__ import annotations

import base64
import functools
import inspect
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from databricks.sdk.service import jobs, sql, workspace
from databricks.sdk.service.files import FilesAPI
from databricks.sdk.service.jobs import JobsAPI
from databricks.sdk.service.workspace import SecretsAPI

from tests.security.scanner import fake_secret, register_secret

WORKSPACE_ID = "1234567890123456"
USER = "deployer@example.com"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any  # parsed JSON, or the raw bytes of a file upload
    auth: str  # "pat", "oauth" or "" (discovery, token endpoint)


class ApiError(Exception):
    def __init__(self, status: int, error_code: str, message: str):
        super().__init__(message)
        self.status, self.error_code, self.message = status, error_code, message


# --- strict parsing with the SDK's definitions ---------------------------------------------

def _diff(sent: Any, kept: Any, where: str = "") -> list[str]:
    """Paths of what was sent but did not survive the SDK's round trip."""
    if isinstance(sent, dict):
        kept = kept if isinstance(kept, dict) else {}
        return [p for k, v in sent.items() for p in _diff(v, kept.get(k, _MISSING), f"{where}.{k}".lstrip("."))]
    if isinstance(sent, list) and isinstance(kept, list) and len(sent) == len(kept):
        return [p for i, (a, b) in enumerate(zip(sent, kept, strict=True)) for p in _diff(a, b, f"{where}[{i}]")]
    return [] if sent == kept else [where or "(body)"]


_MISSING = object()


def parse_strict(cls: type, data: Any, where: str) -> Any:
    """``cls.from_dict(data)``, refusing what the SDK's dataclass does not know."""
    if not isinstance(data, dict):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{where}: expected an object")
    parsed = cls.from_dict(data)
    lost = _diff(data, parsed.as_dict())
    if lost:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{where}: unknown or malformed fields: {', '.join(lost)}")
    return parsed


def check_params(method: Callable[..., Any], data: Any, where: str, required: tuple[str, ...] = ()) -> dict:
    """The body's keys must be parameters of the SDK method that sends it."""
    if not isinstance(data, dict):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{where}: expected an object")
    known = set(inspect.signature(method).parameters) - {"self"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{where}: unknown fields: {', '.join(unknown)}")
    missing = [k for k in required if k not in data]
    if missing:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"{where}: missing fields: {', '.join(missing)}")
    return data


def _now_ms() -> int:
    return int(time.time() * 1000)


# --- state ---------------------------------------------------------------------------------

@dataclass
class FakeRun:
    run_id: int
    job_id: int
    settings: dict[str, Any]
    job_parameters: dict[str, str]
    life_cycle_state: str = "PENDING"
    result_state: str | None = None
    state_message: str = ""
    start_time: int = field(default_factory=_now_ms)
    end_time: int = 0
    attempt: int = 0
    cancel_requested: bool = False
    process: subprocess.Popen | None = None
    output: str = ""

    @property
    def done(self) -> bool:
        return self.life_cycle_state in ("TERMINATED", "INTERNAL_ERROR", "SKIPPED")

    def as_run(self, url: str) -> jobs.Run:
        state = jobs.RunState(
            life_cycle_state=jobs.RunLifeCycleState(self.life_cycle_state),
            result_state=jobs.RunResultState(self.result_state) if self.result_state else None,
            state_message=self.state_message,
        )
        tasks = [jobs.RunTask(task_key=t["task_key"], run_id=self.run_id * 10 + i, attempt_number=self.attempt,
                              state=state) for i, t in enumerate(self.settings.get("tasks", []))]
        return jobs.Run(
            run_id=self.run_id, job_id=self.job_id, run_name=self.settings.get("name"), state=state, tasks=tasks,
            start_time=self.start_time, end_time=self.end_time or None, attempt_number=self.attempt,
            run_page_url=f"{url}/#job/{self.job_id}/run/{self.run_id}", run_type=jobs.RunType.JOB_RUN,
            job_parameters=[jobs.JobParameter(name=k, value=v) for k, v in self.job_parameters.items()],
        )


class FakeWorkspace:
    """The workspace's state, and the requests it received."""

    def __init__(self, storage: Path):
        self.storage = storage
        self.token = fake_secret("databricks_token", "dapi")  # scanned for at the end of the session
        self.client_id = "11111111-2222-3333-4444-" + secrets.token_hex(6)
        self.client_secret = fake_secret("databricks_client_secret", "dose")
        self.tokens: dict[str, str] = {self.token: USER}
        self.requests: list[Request] = []
        self.jobs: dict[int, dict[str, Any]] = {}
        self.runs: dict[int, FakeRun] = {}
        self.secrets: dict[str, dict[str, bytes]] = {}
        self.warehouses: dict[str, dict[str, Any]] = {}
        self.volumes: set[str] = set()
        self.cluster: FakeCluster | None = None
        self.url = ""
        self.lock = threading.RLock()
        self._ids = iter(range(1001, 10**9))

    # helpers for tests
    def create_volume(self, path: str) -> Path:
        self.volumes.add(path.rstrip("/"))
        folder = self.local_path(path)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def local_path(self, path: str) -> Path:
        return self.storage / path.lstrip("/")

    def api_requests(self, prefix: str = "/api/") -> list[Request]:
        return [r for r in self.requests if r.path.startswith(prefix)]

    def changes(self) -> list[tuple[str, str]]:
        """(method, path) of every request that changed something (not GET / HEAD)."""
        return [(r.method, r.path) for r in self.api_requests() if r.method not in ("GET", "HEAD")]

    def finish_run(self, run_id: int, result: str = "SUCCESS", message: str = "") -> None:
        with self.lock:
            run = self.runs[run_id]
            run.life_cycle_state, run.result_state, run.state_message = "TERMINATED", result, message
            run.end_time = _now_ms()

    def wait_run(self, run_id: int, timeout: float = 120.0) -> FakeRun:
        deadline = time.monotonic() + timeout
        while not self.runs[run_id].done:
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {self.runs[run_id].life_cycle_state}")
            time.sleep(0.02)
        return self.runs[run_id]

    def next_id(self) -> int:
        return next(self._ids)


# --- routes --------------------------------------------------------------------------------

Route = Callable[["FakeWorkspace", "Call"], Any]
ROUTES: list[tuple[str, re.Pattern[str], Route]] = []


@dataclass
class Call:
    method: str
    path: str
    match: re.Match[str]
    query: dict[str, str]
    body: Any
    raw: bytes
    headers: Any
    identity: str


def route(method: str, pattern: str):
    def register(func: Route) -> Route:
        ROUTES.append((method, re.compile(f"^{pattern}$"), func))
        return func
    return register


class Raw:
    """A non-JSON answer (file contents, empty bodies with headers)."""

    def __init__(self, body: bytes = b"", headers: dict[str, str] | None = None, status: int = 200):
        self.body, self.headers, self.status = body, headers or {}, status


@route("GET", r"/\.well-known/databricks-config")
def _host_metadata(ws: FakeWorkspace, call: Call) -> Any:
    return {"oidc_endpoint": f"{ws.url}/oidc", "workspace_id": WORKSPACE_ID}


@route("GET", r"/oidc/\.well-known/oauth-authorization-server")
def _oidc(ws: FakeWorkspace, call: Call) -> Any:
    return {"issuer": f"{ws.url}/oidc", "authorization_endpoint": f"{ws.url}/oidc/v1/authorize",
            "token_endpoint": f"{ws.url}/oidc/v1/token"}


@route("POST", r"/oidc/v1/token")
def _token(ws: FakeWorkspace, call: Call) -> Any:
    form = {k: v[-1] for k, v in parse_qs(call.raw.decode()).items()}
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    basic = call.headers.get("Authorization", "")
    if basic.startswith("Basic "):
        client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
    if form.get("grant_type") != "client_credentials" or (client_id, client_secret) != (ws.client_id,
                                                                                         ws.client_secret):
        raise ApiError(401, "invalid_client", "Client authentication failed")
    token = register_secret(f"databricks_oauth_{len(ws.tokens)}", "oauth" + secrets.token_hex(16))
    ws.tokens[token] = ws.client_id
    return {"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": form.get("scope", "")}


@route("GET", r"/api/2\.0/preview/scim/v2/Me")
def _me(ws: FakeWorkspace, call: Call) -> Any:
    return {"id": "42", "userName": call.identity, "displayName": call.identity, "active": True}


@route("GET", r"/api/2\.0/sql/warehouses/(?P<id>[^/]+)")
def _warehouse(ws: FakeWorkspace, call: Call) -> Any:
    warehouse = ws.warehouses.get(call.match["id"])
    if not warehouse:
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Warehouse {call.match['id']} does not exist.")
    return sql.GetWarehouseResponse(id=call.match["id"], name=warehouse["name"],
                                    state=sql.State(warehouse["state"])).as_dict()


# jobs --------------------------------------------------------------------------------------

SERVER_DEFAULTS = {"format": "MULTI_TASK", "max_concurrent_runs": 1, "timeout_seconds": 0,
                   "email_notifications": {}, "webhook_notifications": {}}


def _stored_settings(settings: dict[str, Any], identity: str) -> dict[str, Any]:
    """What the workspace keeps: the settings plus defaults a workspace adds (run_as: who saved
    the job, when none is given)."""
    stored = {**SERVER_DEFAULTS, "run_as": {"user_name": identity}, **json.loads(json.dumps(settings))}
    for task in stored.get("tasks", []):
        task.setdefault("run_if", "ALL_SUCCESS")
        task.setdefault("timeout_seconds", 0)
        task.setdefault("email_notifications", {})
    return stored


def _job(ws: FakeWorkspace, job_id: Any) -> dict[str, Any]:
    try:
        return ws.jobs[int(job_id)]
    except (KeyError, TypeError, ValueError):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Job {job_id} does not exist.") from None


def _job_dict(job_id: int, job: dict[str, Any], expand: bool = True) -> dict[str, Any]:
    settings = dict(job["settings"])
    if not expand:
        settings = {k: v for k, v in settings.items() if k not in ("tasks", "job_clusters")}
    return {"job_id": job_id, "created_time": job["created_time"], "creator_user_name": job["creator"],
            "settings": jobs.JobSettings.from_dict(settings).as_dict()}


@route("POST", r"/api/2\.2/jobs/create")
def _create_job(ws: FakeWorkspace, call: Call) -> Any:
    check_params(JobsAPI.create, call.body, "jobs/create")
    parse_strict(jobs.JobSettings, call.body, "jobs/create")
    job_id = ws.next_id()
    ws.jobs[job_id] = {"settings": _stored_settings(call.body, call.identity), "created_time": _now_ms(),
                       "creator": call.identity}
    return {"job_id": job_id}


@route("POST", r"/api/2\.2/jobs/reset")
def _reset_job(ws: FakeWorkspace, call: Call) -> Any:
    check_params(JobsAPI.reset, call.body, "jobs/reset", required=("job_id", "new_settings"))
    job = _job(ws, call.body["job_id"])
    parse_strict(jobs.JobSettings, call.body["new_settings"], "jobs/reset new_settings")
    job["settings"] = _stored_settings(call.body["new_settings"], call.identity)
    return {}


@route("GET", r"/api/2\.2/jobs/list")
def _list_jobs(ws: FakeWorkspace, call: Call) -> Any:
    expand = call.query.get("expand_tasks") == "true"
    found = [_job_dict(i, j, expand) for i, j in sorted(ws.jobs.items())
             if "name" not in call.query or j["settings"].get("name") == call.query["name"]]
    return {"jobs": found, "has_more": False} if found else {"has_more": False}


@route("GET", r"/api/2\.2/jobs/get")
def _get_job(ws: FakeWorkspace, call: Call) -> Any:
    return _job_dict(int(call.query["job_id"]), _job(ws, call.query.get("job_id")))


@route("POST", r"/api/2\.2/jobs/run-now")
def _run_now(ws: FakeWorkspace, call: Call) -> Any:
    check_params(JobsAPI.run_now, call.body, "jobs/run-now", required=("job_id",))
    job = _job(ws, call.body["job_id"])
    defined = {p["name"]: p.get("default", "") for p in job["settings"].get("parameters", [])}
    given = call.body.get("job_parameters") or {}
    unknown = sorted(set(given) - set(defined))
    if unknown:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Job parameters {unknown} are not defined in the job.")
    run = FakeRun(ws.next_id(), int(call.body["job_id"]), json.loads(json.dumps(job["settings"])),
                  {**defined, **given})
    ws.runs[run.run_id] = run
    if ws.cluster:
        ws.cluster.start(ws, run)
    return {"run_id": run.run_id, "number_in_job": run.run_id}


def _run(ws: FakeWorkspace, run_id: Any) -> FakeRun:
    try:
        return ws.runs[int(run_id)]
    except (KeyError, TypeError, ValueError):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Run {run_id} does not exist.") from None


@route("GET", r"/api/2\.2/jobs/runs/get")
def _get_run(ws: FakeWorkspace, call: Call) -> Any:
    return _run(ws, call.query.get("run_id")).as_run(ws.url).as_dict()


@route("GET", r"/api/2\.2/jobs/runs/list")
def _list_runs(ws: FakeWorkspace, call: Call) -> Any:
    runs = [r for r in sorted(ws.runs.values(), key=lambda r: -r.run_id)
            if "job_id" not in call.query or r.job_id == int(call.query["job_id"])]
    if call.query.get("active_only") == "true":
        runs = [r for r in runs if not r.done]
    return {"runs": [r.as_run(ws.url).as_dict() for r in runs], "has_more": False} if runs else {"has_more": False}


@route("POST", r"/api/2\.2/jobs/runs/cancel")
def _cancel_run(ws: FakeWorkspace, call: Call) -> Any:
    check_params(JobsAPI.cancel_run, call.body, "jobs/runs/cancel", required=("run_id",))
    run = _run(ws, call.body["run_id"])
    with ws.lock:
        run.cancel_requested = True
        if run.process and run.process.poll() is None:
            os.killpg(run.process.pid, signal.SIGTERM)  # what a job cancel does to the task's process
        elif not run.done:
            ws.finish_run(run.run_id, "CANCELED", "Run cancelled.")
    return {}


# secrets -----------------------------------------------------------------------------------

SECRET_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def _scope(ws: FakeWorkspace, name: Any) -> dict[str, bytes]:
    if name not in ws.secrets:
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Scope {name} does not exist!")
    return ws.secrets[name]


@route("POST", r"/api/2\.0/secrets/scopes/create")
def _create_scope(ws: FakeWorkspace, call: Call) -> Any:
    check_params(SecretsAPI.create_scope, call.body, "secrets/scopes/create", required=("scope",))
    if call.body["scope"] in ws.secrets:
        raise ApiError(400, "RESOURCE_ALREADY_EXISTS", f"Scope {call.body['scope']} already exists!")
    ws.secrets[call.body["scope"]] = {}
    return {}


@route("GET", r"/api/2\.0/secrets/scopes/list")
def _list_scopes(ws: FakeWorkspace, call: Call) -> Any:
    return {"scopes": [workspace.SecretScope(name=n, backend_type=workspace.ScopeBackendType.DATABRICKS).as_dict()
                       for n in sorted(ws.secrets)]}


@route("POST", r"/api/2\.0/secrets/put")
def _put_secret(ws: FakeWorkspace, call: Call) -> Any:
    check_params(SecretsAPI.put_secret, call.body, "secrets/put", required=("scope", "key"))
    scope = _scope(ws, call.body["scope"])
    if not SECRET_KEY.match(call.body["key"]):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", "Secret key must consist of alphanumeric characters, "
                       "dashes, underscores, and periods, and may not exceed 128 characters.")
    if ("string_value" in call.body) == ("bytes_value" in call.body):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", "Exactly one of string_value or bytes_value must be given.")
    value = call.body.get("string_value")
    scope[call.body["key"]] = value.encode() if value is not None else base64.b64decode(call.body["bytes_value"])
    return {}


@route("GET", r"/api/2\.0/secrets/get")
def _get_secret(ws: FakeWorkspace, call: Call) -> Any:
    scope = _scope(ws, call.query.get("scope"))
    key = call.query.get("key")
    if key not in scope:
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Secret does not exist with scope: "
                       f"{call.query.get('scope')} and key: {key}")
    return {"key": key, "value": base64.b64encode(scope[key]).decode()}


@route("GET", r"/api/2\.0/secrets/list")
def _list_secrets(ws: FakeWorkspace, call: Call) -> Any:
    return {"secrets": [{"key": k, "last_updated_timestamp": _now_ms()} for k in sorted(_scope(ws, call.query.get(
        "scope")))]}


@route("POST", r"/api/2\.0/secrets/delete")
def _delete_secret(ws: FakeWorkspace, call: Call) -> Any:
    check_params(SecretsAPI.delete_secret, call.body, "secrets/delete", required=("scope", "key"))
    if _scope(ws, call.body["scope"]).pop(call.body["key"], None) is None:
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", "Secret does not exist.")
    return {}


# files (volumes) ---------------------------------------------------------------------------

def _volume_path(ws: FakeWorkspace, path: str) -> Path:
    path = unquote(path)
    parts = path.strip("/").split("/")
    if len(parts) < 4 or parts[0] != "Volumes" or ".." in parts:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Invalid path {path}: expected /Volumes/<catalog>/"
                       "<schema>/<volume>/...")
    if "/" + "/".join(parts[:4]) not in ws.volumes:
        raise ApiError(404, "NOT_FOUND", f"Volume /{'/'.join(parts[:4])} does not exist.")
    return ws.local_path(path)


def _file_headers(path: Path) -> dict[str, str]:
    stat = path.stat()
    return {"Content-Type": "application/octet-stream", "Content-Length": str(stat.st_size),
            "Last-Modified": formatdate(stat.st_mtime, usegmt=True)}


@route("PUT", r"/api/2\.0/fs/files(?P<path>/.+)")
def _upload(ws: FakeWorkspace, call: Call) -> Any:
    unknown = sorted(set(call.query) - (set(inspect.signature(FilesAPI.upload).parameters) - {"self"}))
    if unknown:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"files upload: unknown query parameters {unknown}")
    target = _volume_path(ws, call.match["path"])
    if target.exists() and call.query.get("overwrite") != "true":
        raise ApiError(409, "ALREADY_EXISTS", f"The file {call.match['path']} already exists.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.upload")
    tmp.write_bytes(call.raw)
    tmp.replace(target)
    return Raw(status=204)


@route("(GET|HEAD)", r"/api/2\.0/fs/files(?P<path>/.+)")
def _download(ws: FakeWorkspace, call: Call) -> Any:
    target = _volume_path(ws, call.match["path"])
    if not target.is_file():
        raise ApiError(404, "NOT_FOUND", f"The file {call.match['path']} does not exist.")
    return Raw(b"" if call.method == "HEAD" else target.read_bytes(), _file_headers(target))


@route("(HEAD|PUT)", r"/api/2\.0/fs/directories(?P<path>/.+)")
def _directory(ws: FakeWorkspace, call: Call) -> Any:
    target = _volume_path(ws, call.match["path"].rstrip("/"))
    if call.method == "PUT":
        target.mkdir(parents=True, exist_ok=True)
    elif not target.is_dir():
        raise ApiError(404, "NOT_FOUND", f"The directory {call.match['path']} does not exist.")
    return Raw(status=200)


@route("GET", r"/api/2\.0/fs/directories(?P<path>/.+)")
def _list_directory(ws: FakeWorkspace, call: Call) -> Any:
    path = unquote(call.match["path"]).rstrip("/")
    target = _volume_path(ws, path)
    if not target.is_dir():
        raise ApiError(404, "NOT_FOUND", f"The directory {path} does not exist.")
    contents = []
    for entry in sorted(target.iterdir()):
        if entry.name.startswith(".") and entry.name.endswith(".upload"):
            continue
        item = {"path": f"{path}/{entry.name}" + ("/" if entry.is_dir() else ""), "name": entry.name,
                "is_directory": entry.is_dir()}
        if entry.is_file():
            item.update(file_size=entry.stat().st_size, last_modified=int(entry.stat().st_mtime * 1000))
        contents.append(item)
    return {"contents": contents} if contents else {}


@route("DELETE", r"/api/2\.0/fs/files(?P<path>/.+)")
def _delete_file(ws: FakeWorkspace, call: Call) -> Any:
    target = _volume_path(ws, call.match["path"])
    if not target.is_file():
        raise ApiError(404, "NOT_FOUND", f"The file {call.match['path']} does not exist.")
    target.unlink()
    return Raw(status=204)


# --- the HTTP server -----------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._answer()

    do_POST = do_PUT = do_HEAD = do_DELETE = do_PATCH = do_GET

    def _answer(self) -> None:
        ws = self.server.workspace
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            status, body, headers = 200, *self._dispatch(ws, split.path, query, raw)
        except ApiError as error:
            status, headers = error.status, {"Content-Type": "application/json"}
            body = json.dumps({"error_code": error.error_code, "message": error.message}).encode()
        if isinstance(body, Raw):
            status, headers, body = body.status, body.headers, body.body
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _dispatch(self, ws: FakeWorkspace, path: str, query: dict[str, str], raw: bytes) -> tuple[Any, dict]:
        for method, pattern, handler in ROUTES:
            match = pattern.match(path)
            if match and re.fullmatch(method, self.command):
                identity, auth = self._identity(ws, path)
                json_body = "/fs/files" not in path and "/oidc/" not in path
                body = json.loads(raw or b"{}") if json_body else raw
                with ws.lock:
                    ws.requests.append(Request(self.command, path, query, body, auth))
                    call = Call(self.command, path, match, query, body, raw, self.headers, identity)
                    result = handler(ws, call)
                if isinstance(result, Raw):
                    return result, {}
                return json.dumps(result).encode(), {"Content-Type": "application/json"}
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{self.command} {path}'")

    def _identity(self, ws: FakeWorkspace, path: str) -> tuple[str, str]:
        if not path.startswith("/api/"):
            return "", ""
        header = self.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        if token not in ws.tokens:
            raise ApiError(401, "UNAUTHENTICATED", "Invalid access token.")
        return ws.tokens[token], "oauth" if token.startswith("oauth") else "pat"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    workspace: FakeWorkspace


@contextmanager
def running_workspace(storage: Path) -> Iterator[FakeWorkspace]:
    """A fake workspace on 127.0.0.1:<free port> for the ``with`` block."""
    ws = FakeWorkspace(storage)
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.workspace = ws
    ws.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                              name="fake-databricks")
    thread.start()
    try:
        yield ws
    finally:
        if ws.cluster:
            ws.cluster.stop()
        httpd.shutdown()
        httpd.server_close()


# --- the cluster ---------------------------------------------------------------------------

_REFERENCE = re.compile(r"\{\{\s*([a-z_.]+)\s*\}\}")


class FakeCluster:
    """Runs a job run's python_wheel_task as a real cluster would, but in a local subprocess.

    ``bin_dir`` is the bin folder of a venv where the product's wheel is installed; the wheel
    the task names must also be on the fake volume and declare the task's entry point."""

    def __init__(self, bin_dir: Path, work_dir: Path):
        self.bin_dir, self.work_dir = bin_dir, work_dir
        self.threads: list[threading.Thread] = []

    def start(self, ws: FakeWorkspace, run: FakeRun) -> None:
        thread = threading.Thread(target=self._execute, args=(ws, run), daemon=True, name=f"run-{run.run_id}")
        self.threads.append(thread)
        thread.start()

    def stop(self) -> None:
        for thread in self.threads:
            thread.join(timeout=60)

    def _execute(self, ws: FakeWorkspace, run: FakeRun) -> None:
        task = run.settings["tasks"][0]
        retries = task.get("max_retries", 0)
        while True:
            with ws.lock:
                if run.cancel_requested:
                    return
                run.life_cycle_state, run.attempt = "RUNNING", run.attempt + 1
            try:
                code = self._run_task(ws, run, task)
            except ApiError as error:
                ws.finish_run(run.run_id, "FAILED", error.message)
                return
            except Exception as error:  # the fake's own trouble: fail the run, never hang a test
                ws.finish_run(run.run_id, "FAILED", f"{type(error).__name__}: {error}")
                return
            if code == 0:
                ws.finish_run(run.run_id, "SUCCESS")
                return
            if run.cancel_requested:
                ws.finish_run(run.run_id, "CANCELED", "Run cancelled.")
                return
            if run.attempt > retries:
                ws.finish_run(run.run_id, "FAILED", f"Workload failed: the task exited with code {code}")
                return
            with ws.lock:
                run.life_cycle_state = "WAITING_FOR_RETRY"  # the retry interval is not waited here

    def _run_task(self, ws: FakeWorkspace, run: FakeRun, task: dict[str, Any]) -> int:
        wheel_task = task["python_wheel_task"]
        self._check_wheel(ws, self._wheel_of(run, task), wheel_task)
        params = [self._substitute(ws, run, p) for p in wheel_task.get("parameters", [])]
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")}
        work = self.work_dir / f"run-{run.run_id}-{run.attempt}"
        work.mkdir(parents=True, exist_ok=True)
        # a fresh machine: its own home and temp folder; the runtime's credentials
        env.update(HOME=str(work), TMPDIR=str(work), DATABRICKS_HOST=ws.url, DATABRICKS_TOKEN=ws.token)
        with ws.lock:
            run.process = subprocess.Popen(
                [str(self.bin_dir / wheel_task["entry_point"]), *params], cwd=work, env=env,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        output, _ = run.process.communicate(timeout=300)
        run.output += output
        return run.process.returncode

    @staticmethod
    def _wheel_of(run: FakeRun, task: dict[str, Any]) -> str:
        wheels = [lib["whl"] for lib in task.get("libraries", []) if "whl" in lib]
        for environment in run.settings.get("environments", []):
            if environment["environment_key"] == task.get("environment_key"):
                wheels += [d for d in environment["spec"].get("dependencies", []) if d.endswith(".whl")]
        if len(wheels) != 1:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"expected one wheel library, found {wheels}")
        return wheels[0]

    def _check_wheel(self, ws: FakeWorkspace, wheel: str, wheel_task: dict[str, Any]) -> None:
        local = ws.local_path(wheel)
        if not wheel.startswith("/Volumes/") or not local.is_file():
            raise ApiError(400, "LIBRARY_INSTALLATION_ERROR", f"Library installation failed: {wheel} not found")
        try:
            with zipfile.ZipFile(local) as archive:
                info = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
                metadata = archive.read(info).decode()
                entry_points = archive.read(info.replace("METADATA", "entry_points.txt")).decode()
        except (zipfile.BadZipFile, StopIteration, KeyError):
            raise ApiError(400, "LIBRARY_INSTALLATION_ERROR",
                           f"Library installation failed: {wheel} is not a valid wheel") from None
        name = re.search(r"^Name: (.+)$", metadata, re.M)[1].strip()
        if re.sub(r"[-_.]+", "-", name).lower() != re.sub(r"[-_.]+", "-", wheel_task["package_name"]).lower():
            raise ApiError(400, "RUN_EXECUTION_ERROR", f"package {wheel_task['package_name']} is not in {wheel}")
        if not re.search(rf"^{re.escape(wheel_task['entry_point'])}\s*=", entry_points, re.M):
            raise ApiError(400, "RUN_EXECUTION_ERROR", f"entry point {wheel_task['entry_point']} not in {wheel}")

    def _substitute(self, ws: FakeWorkspace, run: FakeRun, value: str) -> str:
        def reference(match: re.Match[str]) -> str:
            name = match[1]
            if name == "job.run_id":
                return str(run.run_id)
            if name == "job.id":
                return str(run.job_id)
            if name.startswith("job.parameters.") and name[15:] in run.job_parameters:
                return run.job_parameters[name[15:]]
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Invalid dynamic value reference {{{{{name}}}}}")

        value = _REFERENCE.sub(reference, value)
        if value.startswith("/Volumes/"):  # the cluster's FUSE mount of Unity Catalog volumes
            return str(ws.local_path(value))
        return value


def install_wheel_venv(wheel: Path, venv: Path, site_packages: str) -> Path:
    """A throwaway venv with ``wheel`` installed and its dependencies found through a .pth file
    pointing at ``site_packages`` (the test venv's: nothing is downloaded); returns its bin folder.

    The wheel goes in before the .pth exists: pip would otherwise see the checkout's editable
    install through it and skip the wheel."""
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # run outside the checkout: its ingestion_portal.egg-info would count as installed
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "--quiet", "--disable-pip-version-check", str(wheel)], check=True, cwd=venv.parent, env=clean)
    target = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            check=True, capture_output=True, text=True).stdout.strip()
    (Path(target) / "_ingest_test_deps.pth").write_text(site_packages + "\n")
    return venv / "bin"


# --- the product's wheel, built once per test session ---------------------------------------

_BUILD_ROOT: list[Path] = []


def _build_root() -> Path:
    if not _BUILD_ROOT:
        import atexit
        import tempfile

        root = Path(tempfile.mkdtemp(prefix="ingest-test-wheel-"))
        atexit.register(shutil.rmtree, root, True)
        _BUILD_ROOT.append(root)
    return _BUILD_ROOT[0]


@functools.cache
def built_wheel() -> Path:
    """The wheel of this checkout (``ingestion_core.databricks.wheel.build_wheel``)."""
    from ingestion_core.databricks.wheel import build_wheel

    return build_wheel(_build_root() / "dist")


@functools.cache
def wheel_bin() -> Path:
    """The bin folder of a venv with :func:`built_wheel` installed."""
    import sysconfig

    return install_wheel_venv(built_wheel(), _build_root() / "venv", sysconfig.get_paths()["purelib"])

"""Real database servers for the integration tests, started by the tests themselves on loopback.

Fixtures (loaded everywhere through ``pytest_plugins = ["tests.services"]`` in tests/conftest.py):

- ``postgres_server`` (session): a throw-away PostgreSQL cluster on 127.0.0.1:<free port>.
- ``postgres_db`` (function): a fresh, uniquely named database on it, dropped after the test.
- ``mariadb_server`` (session) / ``mariadb_db`` (function): the same for MariaDB.

Servers start lazily (only when a test asks for them), once per session, and stop at session end.
Each lives in its own ``/tmp/ingest-test-<kind>-*`` folder, removed at stop. A server left behind by a
killed pytest (SIGKILL, thread-method timeout) is stopped and its folder removed by the next session.

The password of the test role is the session's fake secret (``tests/security/scanner.py``: made per run with
``secrets.token_urlsafe`` plus characters a URL must encode, exported as ``INGEST_TEST_SECRET_POSTGRES_PASSWORD``
/ ``..._MARIADB_PASSWORD``) and is kept out of the statement logs; a server's folder is scanned for it before it
is removed.
Set ``INGEST_KEEP_SERVICE_DIRS=1`` to keep the folders (data, logs) for debugging.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import skip_or_fail
from tests.security.scanner import fake_secret
from tests.security.scanner_plugin import URL_SPECIAL, scan_before_removal

START_TIMEOUT = 60.0  # seconds; start-up normally takes well under 2 s
STOP_TIMEOUT = 30.0
TEST_USER = "ingest"
PG_VERSION = "15"
_BASE = Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())


# --------------------------------------------------------------------------- helpers


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return not _pid_alive(pid)


def _keep_dirs() -> bool:
    return os.environ.get("INGEST_KEEP_SERVICE_DIRS", "").lower() in ("1", "true", "yes")


def _reap_stale(kind: str, pid_file: str, comm: str, first_signal: signal.Signals) -> None:
    """Stop servers (and remove folders) left by an earlier session whose pytest process is gone."""
    for base in _BASE.glob(f"ingest-test-{kind}-*"):
        owner = _read_pid(base / "owner.pid")
        if owner is not None and _pid_alive(owner):
            continue  # another live session (or xdist worker) owns it
        pid = _read_pid(base / pid_file)
        if pid is not None and _comm(pid) == comm:
            with contextlib.suppress(OSError):
                os.kill(pid, first_signal)
            if not _wait_gone(pid, 10):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 5)
        shutil.rmtree(base, ignore_errors=True)


def _make_base(kind: str) -> Path:
    base = Path(tempfile.mkdtemp(prefix=f"ingest-test-{kind}-", dir=_BASE))
    (base / "owner.pid").write_text(f"{os.getpid()}\n")
    return base


def remove_service_dir(base: Path) -> None:
    """Scan a stopped server's folder for the session's secrets, then remove it (unless asked to keep it)."""
    if base.exists():
        scan_before_removal(base)
    if not _keep_dirs():
        shutil.rmtree(base, ignore_errors=True)


def _unique_db_name(request: pytest.FixtureRequest) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:30]
    return f"t_{slug}_{secrets.token_hex(4)}"


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# --------------------------------------------------------------------------- common API


@dataclass
class _Server:
    host: str
    port: int
    user: str
    password: str
    base_dir: Path
    log_path: Path  # the statement log
    _stopped: bool = field(default=False, repr=False)

    # subclasses implement: url(), connect(), _admin_connect(), create_database(), drop_database(), stop()
    def url(self, database: str) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def connect(self, database: str | None = None, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def execute(self, sql: str, database: str | None = None, params: Any = None) -> list[tuple]:
        """Run one statement as the test user over TCP (autocommit); returns the rows, [] if none."""
        conn = self._execute_connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                rows = list(cur.fetchall()) if cur.description else []
            conn.commit()
            return rows
        finally:
            conn.close()

    def _execute_connect(self, database: str | None) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_mark(self) -> int:
        """Current size of the statement log; pass it to `statement_log(since=...)`."""
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def statement_log(self, since: int = 0) -> str:
        """The server's statement log (every statement it received), from byte offset `since`."""
        with open(self.log_path, "rb") as fh:
            fh.seek(since)
            return fh.read().decode("utf-8", errors="replace")


@dataclass
class Database:
    """One database on a test server: `name`, `url`, `execute(sql)`, `connect()`, `statement_log()`."""

    server: Any
    name: str
    log_start: int = 0

    @property
    def url(self) -> str:
        return self.server.url(self.name)

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def user(self) -> str:
        return self.server.user

    @property
    def password(self) -> str:
        return self.server.password

    def execute(self, sql: str, params: Any = None) -> list[tuple]:
        return self.server.execute(sql, self.name, params)

    def connect(self, **kwargs: Any) -> Any:
        return self.server.connect(self.name, **kwargs)

    def statement_log(self) -> str:
        """The server's statement log since this database was created (all databases' statements)."""
        return self.server.statement_log(since=self.log_start)


# --------------------------------------------------------------------------- PostgreSQL


def _pg_bindir() -> Path | None:
    override = os.environ.get("INGEST_PG_BINDIR")
    candidates = [Path(override)] if override else [Path(f"/usr/lib/postgresql/{PG_VERSION}/bin")]
    if not override:
        candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for c in candidates:
        if (c / "postgres").exists() and (c / "initdb").exists() and (c / "pg_ctl").exists():
            return c
    return None


@dataclass
class PostgresServer(_Server):
    """A running PostgreSQL cluster. Superuser `user` / `password` over TCP (scram-sha-256) on host:port;
    trust on the unix socket in `socket_dir` (admin). `log_path` holds every statement (log_statement=all)."""

    bindir: Path = Path()
    data_dir: Path = Path()
    socket_dir: Path = Path()
    os_user: str | None = None  # run the server binaries as this OS user (root cannot run PostgreSQL)

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL. psycopg2 is named: SQLAlchemy 2.1 maps plain `postgresql://` to psycopg 3."""
        return (f"postgresql+psycopg2://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
                f"@{self.host}:{self.port}/{database}")

    def connect(self, database: str | None = None, **kwargs: Any) -> Any:
        import psycopg2

        params = dict(host=self.host, port=self.port, user=self.user, password=self.password,
                      dbname=database or "postgres", connect_timeout=10)
        params.update(kwargs)
        return psycopg2.connect(**params)

    def _execute_connect(self, database: str | None) -> Any:
        conn = self.connect(database)
        conn.autocommit = True
        return conn

    def _admin_connect(self, database: str = "postgres") -> Any:
        import psycopg2

        conn = psycopg2.connect(host=str(self.socket_dir), port=self.port, user=self.user, dbname=database,
                                connect_timeout=10)
        conn.autocommit = True
        return conn

    def create_database(self, name: str) -> str:
        conn = self._admin_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return name

    def drop_database(self, name: str) -> None:
        """Drop `name`, closing any connection a test left open on it."""
        conn = self._admin_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.os_user, "--", *args] if self.os_user else list(args)

    def _pg_ctl(self, *args: str, timeout: float = STOP_TIMEOUT) -> subprocess.CompletedProcess:
        return subprocess.run(self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), *args),
                              capture_output=True, text=True, timeout=timeout + 10, cwd=self.base_dir,
                              env={**os.environ, "LC_ALL": "C"})

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if (self.data_dir / "postmaster.pid").exists():
            res = self._pg_ctl("stop", "-m", "fast", "-w", "-t", str(int(STOP_TIMEOUT)))
            if res.returncode != 0:
                self._pg_ctl("stop", "-m", "immediate", "-w", "-t", "10")
        remove_service_dir(self.base_dir)


def _start_postgres() -> PostgresServer:
    bindir = _pg_bindir()
    if bindir is None:
        skip_or_fail(f"postgresql not installed (no /usr/lib/postgresql/{PG_VERSION}/bin): "
                     "run scripts/bootstrap.sh --test")
    os_user = None
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            skip_or_fail("postgresql: running as root but there is no `postgres` OS user to run the server")
        if shutil.which("runuser") is None:
            skip_or_fail("postgresql: running as root but `runuser` is missing")
        os_user = "postgres"
    _reap_stale("pg", "data/postmaster.pid", "postgres", signal.SIGQUIT)

    base = _make_base("pg")
    password = fake_secret("postgres_password", suffix=URL_SPECIAL)
    server = PostgresServer(host="127.0.0.1", port=0, user=TEST_USER, password=password,
                            base_dir=base, log_path=base / "postgres.log", bindir=bindir, data_dir=base / "data",
                            socket_dir=base / "sock", os_user=os_user)
    server.socket_dir.mkdir()
    pwfile = base / "pwfile"
    pwfile.write_text(server.password + "\n")
    pwfile.chmod(0o600)
    if os_user:
        os.chmod(base, 0o700)
        for p in (base, server.socket_dir, pwfile, base / "owner.pid"):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    env = {**os.environ, "LC_ALL": "C"}
    try:
        # The bootstrap superuser gets the password from a file, so it never travels as SQL (or into the log).
        res = subprocess.run(server._cmd(str(bindir / "initdb"), "-D", str(server.data_dir), "-U", TEST_USER,
                                         f"--pwfile={pwfile}", "-E", "UTF8", "--no-locale", "--no-sync",
                                         "--no-instructions", "--auth-local=trust", "--auth-host=scram-sha-256"),
                             capture_output=True, text=True, timeout=START_TIMEOUT, cwd=base, env=env)
    finally:
        pwfile.unlink(missing_ok=True)
    if res.returncode != 0:
        server.stop()
        skip_or_fail(f"postgresql: initdb failed (rc {res.returncode}):\n{(res.stdout + res.stderr)[-3000:]}")
    (server.data_dir / "pg_hba.conf").write_text(
        "# written by tests/services.py\n"
        "local all all trust\n"
        "host  all all 127.0.0.1/32 scram-sha-256\n"
    )
    with open(server.data_dir / "postgresql.conf", "a") as conf:
        conf.write(
            "\n# tests/services.py\n"
            "listen_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{server.socket_dir}'\n"
            "fsync = off\n"
            "synchronous_commit = off\n"
            "full_page_writes = off\n"
            "log_statement = 'all'\n"
            "log_line_prefix = '%m [%p] %q%u@%d '\n"
            "max_connections = 100\n"
        )
    last = ""
    for _attempt in range(3):  # a new port if another process grabbed ours in between
        server.port = free_port()
        try:
            res = server._pg_ctl("start", "-w", "-t", str(int(START_TIMEOUT)), "-l", str(server.log_path),
                                 "-o", f"-p {server.port}", timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            last = f"pg_ctl start did not return within {START_TIMEOUT:.0f} s"
            break
        if res.returncode == 0 and _wait_pg_ready(server):
            return server
        last = f"pg_ctl start rc {res.returncode}: {(res.stdout + res.stderr).strip()[-1500:]}"
        if "already in use" not in _log_tail(server.log_path, 10):
            break
        server._pg_ctl("stop", "-m", "immediate", "-w", "-t", "10")
    tail = _log_tail(server.log_path)
    server.stop()
    skip_or_fail(f"postgresql did not start on 127.0.0.1 ({last})\nserver log tail:\n{tail}")
    raise AssertionError("unreachable")


def _wait_pg_ready(server: PostgresServer) -> bool:
    """Poll password logins over TCP until one succeeds or the deadline passes."""
    import psycopg2

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            server.connect(connect_timeout=2).close()
            return True
        except psycopg2.OperationalError:
            if not (server.data_dir / "postmaster.pid").exists():
                return False
            time.sleep(0.05)
    return False


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = _start_postgres()
    atexit.register(server.stop)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_db(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[Database]:
    name = _unique_db_name(request)
    mark = postgres_server.log_mark()
    postgres_server.create_database(name)
    try:
        yield Database(postgres_server, name, mark)
    finally:
        postgres_server.drop_database(name)


# --------------------------------------------------------------------------- MariaDB


def _which(name: str) -> str | None:
    return shutil.which(name) or next((str(p) for d in ("/usr/sbin", "/usr/bin", "/sbin")
                                       if (p := Path(d) / name).exists()), None)


@dataclass
class MariaDBServer(_Server):
    """A running MariaDB server. `user` / `password` (all privileges) over TCP on host:port; root without
    password on the unix socket `socket_path` only (admin). `log_path` is the general query log."""

    data_dir: Path = Path()
    socket_path: Path = Path()
    error_log: Path = Path()
    process: subprocess.Popen | None = field(default=None, repr=False)

    def url(self, database: str = "") -> str:
        return (f"mysql+pymysql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
                f"@{self.host}:{self.port}/{database}?charset=utf8mb4")

    def connect(self, database: str | None = None, **kwargs: Any) -> Any:
        import pymysql

        params = dict(host=self.host, port=self.port, user=self.user, password=self.password,
                      database=database, charset="utf8mb4", connect_timeout=10)
        params.update(kwargs)
        return pymysql.connect(**params)

    def _execute_connect(self, database: str | None) -> Any:
        return self.connect(database, autocommit=True)

    def _admin_connect(self) -> Any:
        import pymysql

        return pymysql.connect(unix_socket=str(self.socket_path), user="root", charset="utf8mb4",
                               autocommit=True, connect_timeout=10)

    def create_database(self, name: str) -> str:
        conn = self._admin_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
        finally:
            conn.close()
        return name

    def drop_database(self, name: str) -> None:
        """Drop `name`, first killing connections a test left open on it (they would block the DROP)."""
        conn = self._admin_connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()",
                            (name,))
                for (pid,) in cur.fetchall():
                    with contextlib.suppress(Exception):
                        cur.execute(f"KILL {int(pid)}")
                cur.execute("SET SESSION lock_wait_timeout = 30")
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        remove_service_dir(self.base_dir)


def _start_mariadb() -> MariaDBServer:
    mariadbd, install_db = _which("mariadbd"), _which("mariadb-install-db")
    if not mariadbd or not install_db:
        skip_or_fail("mariadb-server not installed (no mariadbd / mariadb-install-db): run scripts/bootstrap.sh --test")
    _reap_stale("mariadb", "mariadbd.pid", "mariadbd", signal.SIGTERM)

    base = _make_base("mariadb")
    password = fake_secret("mariadb_password", suffix=URL_SPECIAL)
    server = MariaDBServer(host="127.0.0.1", port=0, user=TEST_USER, password=password,
                           base_dir=base, log_path=base / "general.log", data_dir=base / "data",
                           socket_path=base / "mariadbd.sock", error_log=base / "error.log")
    (base / "tmp").mkdir()
    # Run as whoever we are: as root that is `--user=root` (MariaDB allows it when asked explicitly), which
    # needs no chown and lets the server die with pytest (PR_SET_PDEATHSIG survives no setuid).
    user_opt = [f"--user={pwd.getpwuid(os.geteuid()).pw_name}"] if os.geteuid() == 0 else []
    res = subprocess.run([install_db, "--no-defaults", f"--datadir={server.data_dir}", *user_opt,
                          "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"],
                         capture_output=True, text=True, timeout=START_TIMEOUT, cwd=base)
    if res.returncode != 0:
        server.stop()
        skip_or_fail(f"mariadb: mariadb-install-db failed (rc {res.returncode}):\n{(res.stdout + res.stderr)[-3000:]}")

    last = ""
    for _attempt in range(3):  # a new port if another process grabbed ours in between
        server.port = free_port()
        with open(base / "mariadbd.out", "ab") as out:
            server.process = subprocess.Popen(
                [mariadbd, "--no-defaults", f"--datadir={server.data_dir}", f"--socket={server.socket_path}",
                 f"--port={server.port}", "--bind-address=127.0.0.1", *user_opt,
                 f"--pid-file={base / 'mariadbd.pid'}", f"--log-error={server.error_log}",
                 f"--tmpdir={base / 'tmp'}", "--general-log=1", f"--general-log-file={server.log_path}",
                 "--skip-name-resolve", "--skip-log-bin", "--innodb-flush-log-at-trx-commit=0",
                 "--innodb-doublewrite=0", "--innodb-buffer-pool-size=64M", "--character-set-server=utf8mb4",
                 "--collation-server=utf8mb4_general_ci", "--max-connections=200"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=base,
                preexec_fn=_set_pdeathsig, start_new_session=True,
            )
        err = _wait_mariadb_ready(server)
        if err is None:
            try:
                _mariadb_create_user(server)
                server.connect().close()
                return server
            except Exception as exc:
                last = f"creating the test user failed: {exc!r}"
                break
        last = err
        if "in use" not in _log_tail(server.error_log, 10):
            break
        server.process.kill()
        server.process.wait(10)
    tail = _log_tail(server.error_log)
    server.stop()
    skip_or_fail(f"mariadb did not start on 127.0.0.1 ({last})\nerror log tail:\n{tail}")
    raise AssertionError("unreachable")


def _wait_mariadb_ready(server: MariaDBServer) -> str | None:
    """Poll root logins on the socket until one succeeds; returns None when ready, else what went wrong."""
    import pymysql

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            return f"mariadbd exited with rc {server.process.returncode}"
        try:
            server._admin_connect().close()
            return None
        except pymysql.err.OperationalError:
            time.sleep(0.05)
    return f"not ready after {START_TIMEOUT:.0f} s"


def _mariadb_create_user(server: MariaDBServer) -> None:
    conn = server._admin_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_log_off = 1")  # keep the password out of the general log
            cur.execute("SELECT user, host FROM mysql.user WHERE user = 'root' AND host <> 'localhost'")
            for user, host in cur.fetchall():  # no password-less root over TCP
                cur.execute("DROP USER %s@%s", (user, host))
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (server.user, server.password))
            cur.execute("GRANT ALL PRIVILEGES ON *.* TO %s@'%%' WITH GRANT OPTION", (server.user,))
    finally:
        conn.close()


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDBServer]:
    server = _start_mariadb()
    atexit.register(server.stop)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mariadb_db(mariadb_server: MariaDBServer, request: pytest.FixtureRequest) -> Iterator[Database]:
    name = _unique_db_name(request)
    mark = mariadb_server.log_mark()
    mariadb_server.create_database(name)
    try:
        yield Database(mariadb_server, name, mark)
    finally:
        mariadb_server.drop_database(name)

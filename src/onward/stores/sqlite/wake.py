"""Waking idle workers of the SQLite store the moment any process commits.

Every commit in WAL mode writes to the ``-wal`` file beside the database. On Linux an idle
worker asks the kernel (inotify) to tell it when that file is written, and sleeps in
``select`` until then: it learns of a job enqueued by another process within microseconds,
where polling ``PRAGMA data_version`` every millisecond or two costs both latency and CPU. The
enqueuing process does nothing more than commit. Elsewhere (or if inotify is unavailable)
:func:`watch` returns ``None`` and the store polls.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import sys

__all__ = ["WalWatch", "watch"]

_IN_MODIFY = 0x00000002
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = 0o2000000


class WalWatch:
    """An inotify descriptor watching one file for writes."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def drain(self) -> None:
        """Forget the notifications read so far (several per commit)."""
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while os.read(self.fd, 65536):
                pass

    def pending(self) -> bool:
        """Whether the file was written since the notifications were last read."""
        try:
            ready, _, _ = select.select([self.fd], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(ready)

    def wait(self, timeout: float, also: int | None = None) -> bool:
        """Sleep until the file is written (or ``also`` is readable), at most ``timeout``
        seconds; ``True`` if something happened."""
        fds = [self.fd] if also is None else [self.fd, also]
        try:
            ready, _, _ = select.select(fds, [], [], max(0.0, timeout))
        except (OSError, ValueError):
            return True  # closed under us: let the caller look
        if self.fd in ready:
            self.drain()
        return bool(ready)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def watch(path: str) -> WalWatch | None:
    """Watch ``path`` for writes, or ``None`` where inotify is not available."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            return None
        if libc.inotify_add_watch(fd, os.fsencode(path), _IN_MODIFY) < 0:
            os.close(fd)
            return None
    except (OSError, AttributeError):
        return None
    return WalWatch(fd)

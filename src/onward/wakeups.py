"""An event that a thread can also wait for in ``select``, beside other file descriptors.

An idle worker sleeps until something happens: a job is enqueued (a write to SQLite's WAL
file, a ``NOTIFY``), a lane or :meth:`onward.worker.Worker.stop` asks it to look, or a stop
signal arrives. A :class:`Wakeup` is a :class:`threading.Event` whose :meth:`fileno` becomes
readable when it is set, so that one ``select`` waits for all of these at once, with no
timeout to poll by: an idle worker wakes only when there is something to do.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import weakref

__all__ = ["Wakeup", "wait_readable"]


class Wakeup(threading.Event):
    """A :class:`threading.Event` with a pipe: :meth:`fileno` is readable while it is set
    (or just after a :meth:`poke`)."""

    def __init__(self) -> None:
        super().__init__()
        self._r, self._w = os.pipe()
        for fd in (self._r, self._w):
            os.set_blocking(fd, False)
        self._closer = weakref.finalize(self, _close, self._r, self._w)

    def fileno(self) -> int:
        return self._r

    def set(self) -> None:
        if self.is_set():  # already readable (a clear() in between counts as after this set)
            return
        super().set()
        self.poke()

    def poke(self) -> None:
        """Make :meth:`fileno` readable without setting the event: wakes a thread waiting in
        :meth:`sleep` (safe in a signal handler: one ``write``, no lock)."""
        with contextlib.suppress(OSError):  # full (already readable) or closed
            os.write(self._w, b"\0")

    def clear(self) -> None:
        self._drain()  # before the flag: a set() after this is always readable
        super().clear()

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self._r, 512):
                pass

    def sleep(self, timeout: float | None) -> bool:
        """Wait until set or poked, at most ``timeout`` seconds (``None``: no limit);
        ``True`` if woken."""
        if self.is_set():
            return True
        woken = wait_readable([self._r], timeout)
        if woken and not self.is_set():
            self._drain()  # a poke, or a set() since cleared: do not stay readable
        return woken

    def close(self) -> None:
        self._closer()


def _close(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def wait_readable(fds: list[int], timeout: float | None) -> bool:
    """``select`` on ``fds`` for reading, at most ``timeout`` seconds; ``True`` if one is
    readable (or the wait failed: a descriptor was closed under it, and the caller looks)."""
    try:
        ready, _, _ = select.select(fds, [], [], None if timeout is None else max(0.0, timeout))
    except (OSError, ValueError):
        return True
    return bool(ready)

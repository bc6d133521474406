"""SIGTERM and SIGINT for a worker: handlers that only set a flag (and wake the main thread),
seen at once by every lane.

Python runs a signal handler on the main thread only, possibly some milliseconds after the
signal arrived. So the worker also installs a wake-up socket, written at once by the
interpreter's C-level handler, and its lanes block both signals (the kernel then hands them
to the main thread): a lane about to start a job or claim more asks :meth:`arrived`, which
sees a signal still pending for the process or already caught.
"""

from __future__ import annotations

import select
import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["STOP_SIGNALS", "StopSignals"]

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


class StopSignals:
    """Installed by :meth:`install` (on the main thread only), removed by :meth:`restore`."""

    def __init__(self) -> None:
        self.received = False
        self._previous: dict[int, Any] | None = None
        self._wakeup: tuple[socket.socket, socket.socket, int] | None = None
        self._poke: Callable[[], None] | None = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.received = True
        if self._poke is not None:
            self._poke()

    def install(self, poke: Callable[[], None] | None = None) -> None:
        """Handle SIGTERM and SIGINT, when called on the main thread (else do nothing). The
        handler sets :attr:`received` and calls ``poke`` (which must take no lock: it runs
        on the main thread, between any two of its steps), to wake a sleeping main thread."""
        if threading.current_thread() is not threading.main_thread():
            return
        self._poke = poke
        self._previous = {signum: signal.signal(signum, self._on_signal) for signum in STOP_SIGNALS}
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        try:
            self._wakeup = (reader, writer, signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False))
        except ValueError:  # not supported here: lanes rely on the handler alone
            reader.close()
            writer.close()

    @property
    def installed(self) -> bool:
        return self._wakeup is not None

    def block_here(self) -> None:
        """Block the stop signals on this (lane) thread, so the main thread receives them."""
        if self._wakeup is not None:
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    def arrived(self) -> bool:
        """Whether SIGTERM or SIGINT arrived, maybe before its Python handler ran: still
        pending for the process, or caught, as the wake-up socket tells."""
        if self.received or self._wakeup is None:
            return self.received
        if not STOP_SIGNALS.isdisjoint(signal.sigpending()):
            self.received = True
            return True
        reader = self._wakeup[0]
        try:
            if not select.select((reader,), (), (), 0)[0]:  # nothing arrived (an empty read would raise, per job)
                return False
            data = reader.recv(64)
        except (OSError, ValueError):  # the socket is closed
            return False
        if signal.SIGTERM in data or signal.SIGINT in data:
            self.received = True
        return self.received

    def restore(self) -> None:
        """Put back the handlers found by :meth:`install`."""
        if self._wakeup is not None:
            reader, writer, old_fd = self._wakeup
            signal.set_wakeup_fd(old_fd)
            self._wakeup = None
            reader.close()
            writer.close()
        for signum, handler in (self._previous or {}).items():
            signal.signal(signum, handler)
        self._previous = None
        self._poke = None

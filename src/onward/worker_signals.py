"""SIGTERM and SIGINT for a worker: handlers that only set a flag (and wake the main thread),
seen at once by every lane.

Python runs a signal handler on the main thread only, possibly some milliseconds after the
signal arrived. So the worker also gives the interpreter a wake-up file, written at once by
its C-level handler, and its lanes block both signals (the kernel then hands them to the
main thread): a lane about to start a job or claim more asks :meth:`arrived`, which sees a
signal already caught, and before a claim also one still pending for the process.

The wake-up file is an in-memory file that this process also maps: the handler's ``write``
lands in the mapped page, so a lane learns that nothing arrived by reading one byte, with no
system call per job.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import signal
import tempfile
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["STOP_SIGNALS", "StopSignals"]

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


#: Bytes of the wake-up file: one per signal caught (a worker catches a handful at most).
_WAKEUP_SIZE = 4096


class _WakeupFile:
    """A file the interpreter's C-level handler writes each caught signal's number to, mapped
    into this process's memory so that reading what was written costs no system call."""

    def __init__(self) -> None:
        if hasattr(os, "memfd_create"):
            self.fd = os.memfd_create("onward-signals", os.MFD_CLOEXEC)
        else:  # (macOS) a file with no name: its pages are shared with the mapping all the same
            with tempfile.TemporaryFile() as f:
                self.fd = os.dup(f.fileno())
        try:
            os.ftruncate(self.fd, _WAKEUP_SIZE)
            os.set_blocking(self.fd, False)  # (the interpreter requires it of a wake-up fd)
            self.view = mmap.mmap(self.fd, _WAKEUP_SIZE)
        except BaseException:
            os.close(self.fd)
            raise
        self.read = 0  # how far the bytes written were looked at

    def caught(self) -> set[int] | None:
        """The signals written since the last call; ``None``: the file is full (the caller
        then relies on the handler alone)."""
        start = pos = self.read
        view = self.view
        if pos >= _WAKEUP_SIZE:
            return None
        if not view[pos]:
            return set()
        while pos < _WAKEUP_SIZE and view[pos]:
            pos += 1
        self.read = pos  # (two lanes may both read the same bytes: harmless)
        return set(view[start:pos])

    def close(self) -> None:
        with contextlib.suppress(BufferError):  # (a reader still holds the view: the fd goes anyway)
            self.view.close()
        os.close(self.fd)


class StopSignals:
    """Installed by :meth:`install` (on the main thread only), removed by :meth:`restore`."""

    def __init__(self) -> None:
        self.received = False
        self._previous: dict[int, Any] | None = None
        self._wakeup: tuple[_WakeupFile, int] | None = None
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
        try:
            wakeup = _WakeupFile()
        except OSError:  # no such file here: lanes rely on the handler alone
            return
        try:
            self._wakeup = (wakeup, signal.set_wakeup_fd(wakeup.fd, warn_on_full_buffer=False))
        except ValueError:  # not supported here: lanes rely on the handler alone
            wakeup.close()

    @property
    def installed(self) -> bool:
        return self._wakeup is not None

    def block_here(self) -> None:
        """Block the stop signals on this (lane) thread, so the main thread receives them."""
        if self._wakeup is not None:
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    def arrived(self, claiming: bool = False) -> bool:
        """Whether SIGTERM or SIGINT arrived, maybe before its Python handler ran: caught
        (as the wake-up file tells) or, when ``claiming``, still pending for the process."""
        wakeup = self._wakeup
        if self.received or wakeup is None:
            return self.received
        file = wakeup[0]
        read = file.read
        if not claiming and read < _WAKEUP_SIZE and not file.view[read]:
            return False  # nothing written since last time (the common case: one byte read)
        caught = file.caught()
        if caught is None:  # (the file is full: only the handler's flag is left)
            return self.received
        pending = signal.sigpending() if claiming else ()
        if not (STOP_SIGNALS.isdisjoint(caught) and STOP_SIGNALS.isdisjoint(pending)):
            self.received = True
        return self.received

    def restore(self) -> None:
        """Put back the handlers found by :meth:`install`."""
        if self._wakeup is not None:
            wakeup, old_fd = self._wakeup
            signal.set_wakeup_fd(old_fd)
            self._wakeup = None
            wakeup.close()
        for signum, handler in (self._previous or {}).items():
            signal.signal(signum, handler)
        self._previous = None
        self._poke = None

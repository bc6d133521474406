"""``onward worker --processes N``: N worker processes under one supervisor.

Threads of one process share one interpreter lock, so a worker whose jobs spend their time
in Python rather than waiting on I/O is bound to one core. The supervisor starts N ordinary
``onward worker`` processes (fresh interpreters, never ``fork()``: a forked child would share
the parent's database connections), passes SIGTERM and SIGINT on to them, and restarts a
child that died, waiting longer after each crash in a row so that a job that kills its
worker cannot make the supervisor spin. It claims nothing: each child is a complete worker
with its own leases, so the guarantees of one worker hold for each of them.

Each child keeps a journal (:mod:`onward.journal`) in a directory the supervisor made. When
a child dies, the supervisor hands its journal to ``take_over`` (:mod:`onward.takeover`,
which opens a store connection on first use): the dead child's jobs go back at once, not
when their leases expire, and only the job it was running counts the lost try.

A child that exits with status ``RECYCLED`` stopped gracefully to be replaced
(``--max-jobs-per-child``, ``--max-memory-per-child``, or a timed-out job whose thread
cannot be stopped) and is started again at once, without counting as a crash.

A child that exits with status 0 is done (``--burst``) and is not restarted; the supervisor
returns once every child is done, or, after a signal, once every child has stopped. A
child still running ``shutdown_grace`` seconds after the signal is killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from onward import retry
from onward.journal import ENV_VAR as JOURNAL_ENV
from onward.journal import journals_of

log = logging.getLogger("onward.supervisor")

POLL = 0.05
MIN_BACKOFF = 0.5
MAX_BACKOFF = 30.0
STABLE_AFTER = 60.0  # a child that ran this long resets its crash backoff
#: The exit status of a child that stopped to be replaced (--max-jobs-per-child,
#: --max-memory-per-child, a timed-out job's thread): started again at once, not a crash.
RECYCLED = 75
#: Set in each child's environment: its place (0..N-1) among the supervisor's children.
WORKER_INDEX_ENV = "ONWARD_WORKER_INDEX"


@dataclass
class _Slot:
    """One of the N places a worker process runs in, and its crash history."""

    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    crashes: int = 0
    restart_at: float | None = None
    done: bool = False
    history: list[int] = field(default_factory=list)  # exit statuses, for the logs and tests


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """On Linux, have the kernel send SIGTERM to the child if the supervisor dies."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def backoff(crashes: int) -> float:
    """Seconds to wait before restarting a child after ``crashes`` crashes in a row."""
    return retry.backoff(crashes, MIN_BACKOFF, MAX_BACKOFF)


class Supervisor:
    """Runs ``processes`` copies of ``argv`` and keeps them running until told to stop.

    ``argv`` is a complete command (an ``onward worker`` without ``--processes``). Each child
    gets ``ONWARD_WORKER_INDEX`` (0..N-1) in its environment.
    """

    def __init__(
        self,
        argv: Sequence[str],
        processes: int,
        *,
        shutdown_grace: float = 35.0,
        env: dict[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_child_exit: Callable[[int], None] | None = None,
        take_over: Callable[[str], int] | None = None,
    ) -> None:
        if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
            raise ValueError(f"processes must be an int >= 1, got {processes!r}")
        self.argv = list(argv)
        self.processes = processes
        self.shutdown_grace = shutdown_grace
        self.env = dict(os.environ if env is None else env)
        self.clock = clock
        self.on_child_exit = on_child_exit  # called with the pid of each child that ended
        # Called with the journal of each child that ended without removing it (it died):
        # takes over that child's jobs at once (onward.takeover).
        self.take_over = take_over
        self.journal_dir: str | None = None
        self.slots = [_Slot(i) for i in range(processes)]
        self._stopping: int | None = None  # the signal that asked us to stop
        self._stop_deadline = 0.0
        self._wake = threading.Event()

    # -- control --------------------------------------------------------------------------
    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop every child gracefully by sending it ``signum``; thread-safe, idempotent."""
        first = self._stopping is None
        if first:
            self._stopping = signum
            self._stop_deadline = self.clock() + self.shutdown_grace
        for slot in self.slots:
            proc = slot.proc
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signum)
        self._wake.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop(signum)

    @property
    def pids(self) -> list[int]:
        """The process ids of the running children."""
        return [s.proc.pid for s in self.slots if s.proc is not None and s.proc.poll() is None]

    # -- running --------------------------------------------------------------------------
    def run(self) -> int:
        """Supervise until stopped or until every child is done; returns an exit status
        (0 when every child ended with 0)."""
        previous = self._install_signals()
        if self.take_over is not None:
            self.journal_dir = tempfile.mkdtemp(prefix="onward-journals-")
        try:
            for slot in self.slots:
                self._spawn(slot)
            return self._loop()
        finally:
            self._kill_leftovers()
            self._restore_signals(previous)
            if self.journal_dir is not None:
                shutil.rmtree(self.journal_dir, ignore_errors=True)

    def _spawn(self, slot: _Slot) -> None:
        env = dict(self.env)
        env[WORKER_INDEX_ENV] = str(slot.index)
        if self.journal_dir is not None:
            env[JOURNAL_ENV] = self.journal_dir
        slot.proc = subprocess.Popen(
            self.argv, env=env, preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None
        )
        slot.started = self.clock()
        slot.restart_at = None
        log.info("worker process %d started (pid %d)", slot.index, slot.proc.pid, extra={"event": "process_started"})

    def _loop(self) -> int:
        while True:
            now = self.clock()
            live = 0
            for slot in self.slots:
                proc = slot.proc
                if proc is not None:
                    code = proc.poll()
                    if code is None:
                        live += 1
                        continue
                    slot.proc = None
                    self._take_over(proc.pid)
                    if self.on_child_exit is not None:
                        self.on_child_exit(proc.pid)
                    slot.history.append(code)
                    self._exited(slot, code, now)
                if slot.restart_at is not None and self._stopping is None and now >= slot.restart_at:
                    self._spawn(slot)
                    live += 1
                elif slot.restart_at is not None and self._stopping is None:
                    live += 1  # waiting to restart still counts as running
            if live == 0:
                return self._status()
            if self._stopping is not None and now >= self._stop_deadline:
                self._kill_leftovers()
            self._wake.wait(POLL)
            self._wake.clear()

    def _status(self) -> int:
        """0 if every child's last exit was clean, else the first bad status (128 + signal)."""
        for slot in self.slots:
            code = slot.history[-1] if slot.history else 0
            if self._stopping is not None and code == -self._stopping:
                continue  # killed by the signal we passed on before it could install a handler
            if code == RECYCLED:
                continue  # stopped to be replaced, as the supervisor was stopping
            if code != 0:
                return code if code > 0 else 128 - code
        return 0

    def _exited(self, slot: _Slot, code: int, now: float) -> None:
        if self._stopping is not None:
            log.info("worker process %d stopped (status %d)", slot.index, code, extra={"event": "process_stopped"})
            return
        if code == 0:
            slot.done = True
            log.info("worker process %d finished", slot.index, extra={"event": "process_finished"})
            return
        if code == RECYCLED:
            slot.restart_at = now
            log.info("worker process %d replaced by a fresh one", slot.index, extra={"event": "process_recycled"})
            return
        if now - slot.started >= STABLE_AFTER:
            slot.crashes = 0
        slot.crashes += 1
        delay = backoff(slot.crashes)
        slot.restart_at = now + delay
        how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        log.error(
            "worker process %d %s; restarting in %.1f s (crash %d in a row)",
            slot.index,
            how,
            delay,
            slot.crashes,
            extra={"event": "process_crashed"},
        )

    def _take_over(self, pid: int) -> None:
        """A child ended: if it died with jobs in hand (its journal is still there), have them
        taken over now rather than when their leases expire."""
        if self.take_over is None or self.journal_dir is None:
            return
        for path in journals_of(self.journal_dir, pid):
            self.take_over(path)

    def _kill_leftovers(self) -> None:
        for slot in self.slots:
            proc = slot.proc
            if proc is not None and proc.poll() is None:
                log.warning("worker process %d did not stop in time; killing it", slot.index)
                proc.kill()
                proc.wait()
                self._take_over(proc.pid)

    # -- signals ----------------------------------------------------------------------------
    def _install_signals(self) -> dict[int, Any] | None:
        if threading.current_thread() is not threading.main_thread():
            return None
        return {signum: signal.signal(signum, self._on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}

    def _restore_signals(self, previous: dict[int, Any] | None) -> None:
        for signum, handler in (previous or {}).items():
            signal.signal(signum, handler)


#: Options of the group, not of each child: the supervisor drops them from the children's command.
GROUP_OPTIONS = ("--processes", "--metrics-port", "--metrics-host")


def child_argv(argv: Sequence[str]) -> list[str]:
    """The command for one child: this ``onward`` command line without the group's options."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in GROUP_OPTIONS:
            skip = True
            continue
        if arg.startswith(tuple(f"{option}=" for option in GROUP_OPTIONS)):
            continue
        out.append(arg)
    return [sys.executable, "-m", "onward", *out]

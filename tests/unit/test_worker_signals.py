"""A worker's lanes see SIGTERM/SIGINT as soon as the interpreter caught it, before the Python
handler runs on the main thread, and before a claim also while it is still pending. Each case
runs in a child interpreter, so the test process's own signal handling is left alone."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _run(body: str) -> str:
    script = "import os, signal, threading\nfrom onward.worker_signals import StopSignals\n" + textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_signal_written_by_the_c_level_handler_is_seen_before_the_python_handler_ran() -> None:
    out = _run(
        """
        signals = StopSignals()
        signals.install()
        wakeup = signals._wakeup[0]
        print(signals.arrived(), signals.received)
        os.write(wakeup.fd, bytes([signal.SIGUSR1]))  # another signal: not a stop
        print(signals.arrived())
        os.write(wakeup.fd, bytes([signal.SIGTERM]))  # what the interpreter's C handler writes
        print(signals.arrived())
        signals.restore()
        """
    )
    assert out.split() == ["False", "False", "False", "True"]


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_a_stop_signal_reaches_a_lane_through_the_handler(signum: str) -> None:
    out = _run(
        f"""
        signals = StopSignals()
        signals.install()
        seen = []
        def lane():
            signals.block_here()
            os.kill(os.getpid(), signal.{signum})
            while not signals.arrived():
                pass
            seen.append(True)
        t = threading.Thread(target=lane)
        t.start()
        t.join()
        print(seen, signals.received)
        signals.restore()
        """
    )
    assert out == "[True] True"


def test_a_signal_still_pending_is_seen_before_a_claim() -> None:
    out = _run(
        """
        signals = StopSignals()
        signals.install()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # delivered to no thread yet
        os.kill(os.getpid(), signal.SIGTERM)
        print(signals.arrived(claiming=True))
        signals.restore()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        """
    )
    assert out == "True"


def test_restore_puts_back_the_previous_handlers_and_wakeup_fd() -> None:
    out = _run(
        """
        def mine(signum, frame):
            pass
        signal.signal(signal.SIGTERM, mine)
        r, w = os.pipe()
        os.set_blocking(w, False)
        signal.set_wakeup_fd(w)
        signals = StopSignals()
        signals.install()
        print(signals.installed)
        signals.restore()
        print(signal.getsignal(signal.SIGTERM) is mine, signal.set_wakeup_fd(-1) == w)
        """
    )
    assert out.split() == ["True", "True", "True"]

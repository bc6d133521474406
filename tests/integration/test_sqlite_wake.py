"""SQLite: an idle worker learns of a job another process enqueued through the WAL file (on
Linux), not by polling; without the watch it still finds it by polling."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from onward import stores
from onward.stores.sqlite import wake


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
def test_a_commit_by_another_process_wakes_the_watch_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    with stores.connected(url) as store:
        watcher = wake.watch(store.path + "-wal")  # type: ignore[attr-defined]
        assert watcher is not None
        try:
            watcher.drain()
            assert not watcher.wait(0.05)  # nothing written: it sleeps the whole time
            script = f"import onward; from jobs_core import Echo; onward.connect({url!r}); Echo.perform_later(1)"
            subprocess.run([sys.executable, "-c", script], check=True, env=_src_path())
            assert watcher.wait(5.0)
        finally:
            watcher.close()


def test_an_idle_store_wait_returns_when_another_process_enqueues(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    with stores.connected(url) as store:
        woke = threading.Event()
        started = time.monotonic()
        returned: list[float] = []

        def wait() -> None:
            store.wait_for_jobs(None, 30.0, woke)
            returned.append(time.monotonic() - started)

        waiter = threading.Thread(target=wait)
        waiter.start()
        script = f"import onward; from jobs_core import Echo; onward.connect({url!r}); Echo.perform_later(1)"
        subprocess.run([sys.executable, "-c", script], check=True, env=_src_path())
        waiter.join(30)
        assert returned
        assert returned[0] < 25  # it did not sleep out its 30 s


def _src_path() -> dict[str, str]:
    import os

    src = str(Path(__file__).parents[2] / "src")
    return {"PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), src]), "PATH": os.environ.get("PATH", "")}

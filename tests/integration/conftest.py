"""Fixtures of the integration tests that start worker processes."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from onward import Store


@pytest.fixture
def workers(
    tmp_path: Path, subprocess_env: dict[str, str], store: Store
) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``onward worker --processes ...`` on the test's store; output goes to a file."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        with open(tmp_path / "workers.log", "a") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "onward", "worker", "--import", "jobs_reliability", *args,
                 "--database-url", store.url],
                env=subprocess_env, stdout=out, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

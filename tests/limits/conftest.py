"""Starting worker processes for the limits tests (output kept, shown when a test fails)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def worker_command(store_url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "onward", "worker", "--import", "jobs_limits", "--database-url", store_url, *extra]


@pytest.fixture
def spawn(tmp_path: Path, subprocess_env: dict[str, str]) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start worker processes (each in its own process group); kill leftovers after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(store_url: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with open(tmp_path / f"worker-{len(procs)}.log", "wb") as out:
            proc = subprocess.Popen(
                worker_command(store_url, *extra), env={**subprocess_env, **(env or {})}, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        procs.append(proc)
        return proc

    yield start
    for i, proc in enumerate(procs):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        print(f"--- worker {i} exited {proc.returncode}")
        print((tmp_path / f"worker-{i}.log").read_text(errors="replace")[-3000:])

"""The test project (tests/django_project) as the Django tests drive it.

Django's settings belong to a process, so the project runs in processes of its own: a
driver that runs each test's code inside the project (``Project.run``), real
``manage.py onward_worker`` processes, and ``manage.py migrate`` once per test module. On
PostgreSQL each test module gets a fresh database, dropped afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pg  # tests/pg.py (tests/ is on the import path: see tests/conftest.py)

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
PROJECT = TESTS / "django_project"
SRC = TESTS.parent / "src"


class Project:
    """The test project against one database."""

    def __init__(self, vendor: str, database_url: str, workdir: Path) -> None:
        self.vendor = vendor
        self.database_url = database_url
        self.workdir = workdir
        self.env = dict(os.environ)
        self.env.update(
            SHOP_DATABASE_URL=database_url,
            DJANGO_SETTINGS_MODULE="shop_project.settings",
            PYTHONPATH=os.pathsep.join([str(PROJECT), str(SRC), self.env.get("PYTHONPATH", "")]),
            PYTHONUNBUFFERED="1",
        )
        self.env.pop("ONWARD_DATABASE_URL", None)
        self._driver: subprocess.Popen[str] | None = None
        self._processes: list[subprocess.Popen[str]] = []
        self._logs: dict[int, Path] = {}

    # -- manage.py ---------------------------------------------------------------------
    def manage(
        self, *args: str, timeout: float = 90, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python manage.py ARGS`` to the end; fails the test on a non-zero status."""
        proc = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=PROJECT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            pytest.fail(f"manage.py {' '.join(args)} exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def burst(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        """``manage.py onward_worker --burst ARGS``."""
        return self.manage("onward_worker", "--burst", "--lease-timeout", "10", *args, timeout=timeout)

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start ``python manage.py ARGS`` in the background, its output going to a file
        (``log_of``); stopped with the project."""
        log = self.workdir / f"{args[0]}-{len(self._processes)}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "manage.py", *args],
                cwd=PROJECT,
                env={**self.env, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        self._logs[proc.pid] = log
        self._processes.append(proc)
        return proc

    def log_of(self, proc: subprocess.Popen[str]) -> str:
        return self._logs[proc.pid].read_text()

    # -- code inside the project ---------------------------------------------------------
    def run(self, code: str, **values: Any) -> Any:
        """Run ``code`` in the project (``values`` as variables) and return what it set as ``out``."""
        driver = self._driver
        if driver is None or driver.poll() is not None:
            driver = self._driver = subprocess.Popen(
                [sys.executable, str(HERE / "driver.py")],
                cwd=PROJECT,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        assert driver.stdin is not None
        assert driver.stdout is not None
        driver.stdin.write(json.dumps({"code": code, "values": values}) + "\n")
        driver.stdin.flush()
        line = driver.stdout.readline()
        if not line:
            pytest.fail(f"the project's driver exited with {driver.wait()}")
        reply = json.loads(line)
        if "error" in reply:
            raise ProjectError(reply["error"])
        return reply["out"]

    def wait(self, ids: list[str], timeout: float = 30.0) -> list[dict[str, Any]]:
        """The results of ``ids`` once all are finished (or at ``timeout``)."""
        return self.run("out = wait(ids, timeout)", ids=ids, timeout=timeout)  # type: ignore[no-any-return]

    def close(self) -> None:
        for proc in [*self._processes, self._driver]:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


class ProjectError(Exception):
    """Code run in the project raised; the message is its traceback."""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_project(vendor: str, tmp: Path) -> Iterator[Project]:
    if vendor == "sqlite":
        project = Project(vendor, f"sqlite:///{tmp / 'db.sqlite3'}", tmp)
        try:
            project.manage("migrate", "-v", "0")
            yield project
        finally:
            project.close()
        return
    name = f"{pg.PREFIX}{os.getpid()}_django_{uuid.uuid4().hex[:8]}"
    try:
        with pg.admin_connect() as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        pg.unavailable(f"cannot create a database on {pg.ADMIN_URL} ({type(exc).__name__}: {exc})")
    project = Project(vendor, pg.url_for(name), tmp)
    try:
        project.manage("migrate", "-v", "0")
        yield project
    finally:
        project.close()
        with pg.admin_connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

"""Helpers for the command-line tests: run ``onward`` in-process against a real store."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from onward import Store
from onward.cli import main

HERE = Path(__file__).parent

Invoke = Callable[..., Result]


@pytest.fixture
def onward_cli(store: Store, store_url: str) -> Invoke:
    """``onward_cli("jobs", "--state", "failed")`` runs the command on the test's store
    (also the default store during the test, where ``perform_later`` puts jobs)."""
    runner = CliRunner()

    def invoke(*args: str, url: str | None = None) -> Result:
        return runner.invoke(main, [*args, "--database-url", url or store_url], catch_exceptions=False)

    return invoke


@pytest.fixture
def cli_env(subprocess_env: dict[str, str]) -> dict[str, str]:
    """Environment for ``onward`` subprocesses: ``cli_jobs`` importable, no terminal tricks."""
    env = dict(subprocess_env)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env["PYTHONPATH"]])
    env.pop("ONWARD_DATABASE_URL", None)
    return env

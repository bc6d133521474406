"""``onward dashboard``: the real command, serving on a loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from click.testing import CliRunner

from onward import stores
from onward.cli import main

TOKEN = "cli-token-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def dashboard_process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "onward", "dashboard", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until_serving(url: str, proc: subprocess.Popen[str], **kwargs: object) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(url, timeout=5, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError:
            if proc.poll() is not None:
                raise AssertionError(f"the dashboard exited: {proc.stdout.read() if proc.stdout else ''}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ONWARD_DASHBOARD_TOKEN"}
    result = CliRunner().invoke(
        main, ["dashboard", "--host", "0.0.0.0", "--database-url", f"sqlite:///{tmp_path / 'x.db'}"], env=env
    )
    assert result.exit_code == 2
    assert "refusing to serve the dashboard on 0.0.0.0 without an access token" in result.output
    assert not (tmp_path / "x.db").exists()  # refused before opening anything


def test_serves_on_loopback_by_default(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    port = free_port()
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    stores.open_store(url).close()  # the dashboard shows a store; it does not create one
    env = {**subprocess_env, "ONWARD_DASHBOARD_TOKEN": ""}
    with dashboard_process(["--port", str(port), "--database-url", url], env) as proc:
        response = wait_until_serving(f"http://127.0.0.1:{port}/", proc)
        assert response.status_code == 200
        assert "Overview" in response.text
        assert str(tmp_path / "jobs.db") in response.text  # the store it reads
        # Without a token it answers to this machine's names only.
        assert httpx.get(f"http://127.0.0.1:{port}/", headers={"Host": "rebound.example"}).status_code == 400


def test_token_from_the_environment_guards_a_public_address(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    port = free_port()
    env = {**subprocess_env, "ONWARD_DASHBOARD_TOKEN": TOKEN}
    args = ["--host", "0.0.0.0", "--port", str(port), "--database-url", f"sqlite:///{tmp_path / 'jobs.db'}"]
    stores.open_store(f"sqlite:///{tmp_path / 'jobs.db'}").close()
    with dashboard_process(args, env) as proc:
        base = f"http://127.0.0.1:{port}"
        assert wait_until_serving(f"{base}/", proc).status_code == 401
        ok = httpx.get(f"{base}/api/overview", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        login = httpx.get(f"{base}/?token={TOKEN}")
        assert login.status_code == 303
        proc.terminate()
        output = proc.communicate(timeout=10)[0]
    assert f"?token={TOKEN}" in output  # the login link is printed

"""onward demo: runs the seed's workflows with real worker processes and checks its summary
against the demo's own application database."""

from __future__ import annotations

import itertools
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from onward import stores
from onward.admin import Admin
from onward.demo.jobs import crash_bound


def _run_demo(directory: Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "onward", "demo", "--dir", str(directory), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=110,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result.stdout


def _check(directory: Path, output: str, users: int, rows: int) -> None:
    assert "✓ jobs: 7 jobs, all succeeded" in output
    assert f"✓ graceful stop: nothing repeated: {users:,}/{users:,} users emailed, 0 duplicates (bound: 0)" in output
    crash = re.search(r"✓ crash: repeats within the bound: ([\d,]+)/[\d,]+ rows imported, (\d+) duplicates", output)
    assert crash is not None, output
    assert crash.group(1).replace(",", "") == str(rows)
    assert int(crash.group(2)) <= crash_bound()
    assert f"bound: ≤ {crash_bound()}" in output
    assert "✗" not in output
    # Independently of what the demo printed: the application's log and the job store.
    app = sqlite3.connect(directory / "app.sqlite3")
    sent, distinct = app.execute(
        "SELECT count(*), count(DISTINCT user_id) FROM sent_emails WHERE kind = 'bulk-welcome'"
    ).fetchone()
    assert (sent, distinct) == (users, users)
    imported, distinct_rows = app.execute("SELECT count(*), count(DISTINCT row_id) FROM imported_records").fetchone()
    assert distinct_rows == rows
    assert imported - distinct_rows == int(crash.group(2))
    app.close()
    store = stores.open_store(f"sqlite:///{directory / 'onward.sqlite3'}")
    try:
        found = Admin(store).jobs(limit=1000).jobs
    finally:
        store.close()
    jobs = {j.job_class.rpartition(":")[2]: j for j in found if j.schedule_key is None}
    heartbeats = sorted(j.scheduled_for for j in found if j.schedule_key == "demo-heartbeat")
    assert len(heartbeats) >= 2
    assert {(b - a).total_seconds() for a, b in itertools.pairwise(heartbeats)} == {2.0}
    assert "✓ schedule: each tick once: demo-heartbeat ticked" in output
    assert set(jobs) == {
        "SendWelcomeEmail",
        "SendOnboardingTips",
        "NotifyAdmin",
        "TrackSignupMetrics",
        "BulkWelcomeEmail",
        "TrackBulkEmailMetrics",
        "ProcessImport",
        "MakeThumbnail",
        "PublishAlbum",
    }
    assert jobs["SendOnboardingTips"].parent_id == jobs["SendWelcomeEmail"].id
    assert jobs["NotifyAdmin"].parent_id == jobs["SendWelcomeEmail"].id
    assert jobs["TrackSignupMetrics"].parent_id == jobs["SendOnboardingTips"].id
    assert jobs["BulkWelcomeEmail"].resumptions == 1
    assert jobs["ProcessImport"].resumptions == 1
    assert all(j.state == "succeeded" for j in jobs.values())
    assert "✓ fan-in: callback once: 12/12 thumbnails, then PublishAlbum 1 time(s)" in output
    assert jobs["PublishAlbum"].parent_batch_id is not None
    store = stores.open_store(f"sqlite:///{directory / 'onward.sqlite3'}")
    try:
        album = Admin(store).batch(jobs["PublishAlbum"].parent_batch_id)
    finally:
        store.close()
    assert (album.record.state, album.record.total) == ("succeeded", 12)


def test_demo_small(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    output = _run_demo(tmp_path / "demo", subprocess_env, "--users", "300", "--rows", "300")
    _check(tmp_path / "demo", output, 300, 300)
    assert "SIGTERM -> worker A" in output
    assert "SIGKILL -> worker B" in output
    # not a terminal: plain progress lines, no live bars
    assert "BulkWelcomeEmail send_emails:" in output
    assert "\x1b[" not in output
    _the_printed_commands_work(output, subprocess_env)


def _the_printed_commands_work(output: str, env: dict[str, str]) -> None:
    """The commands the demo suggests at the end run as printed and show the demo's jobs."""
    hints = output.split("look around with:", 1)[1].strip().splitlines()
    export = hints[0].strip()
    assert export.startswith("export ONWARD_DATABASE_URL=")
    env = {**env, "ONWARD_DATABASE_URL": export.split("=", 1)[1]}
    commands = [line.split("#")[0].strip() for line in hints[1:] if "dashboard" not in line]
    assert commands[0].split()[-1] == "jobs"
    for command in commands:
        result = subprocess.run(shlex.split(command), capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, (command, result.stderr)
        expected = "demo-heartbeat" if command.endswith(" schedules") else "ProcessImport"
        if command.split()[-2] == "show" and "ProcessImport" not in result.stdout:
            expected = "PublishAlbum"  # the album's batch, with its callback
        assert expected in result.stdout


@pytest.mark.slow
def test_demo_default(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    """The README's first command, as users run it (a few thousand users and rows)."""
    output = _run_demo(tmp_path / "demo", subprocess_env)
    _check(tmp_path / "demo", output, 3000, 3000)
    _the_printed_commands_work(output, subprocess_env)

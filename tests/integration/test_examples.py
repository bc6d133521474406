"""The examples, run by real worker processes, stopped gracefully (SIGTERM) and killed (SIGKILL).

Each example records every side effect in its application database, so this test counts
from outside the worker what was done and how often: after a graceful stop nothing is done
twice; after a kill, at most the item in flight plus the items advanced during the last
``checkpoint_interval`` are done again; in both cases nothing is lost.
"""

from __future__ import annotations

import functools
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

import onward
import waiting

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))

import app_db  # noqa: E402
import bulk_welcome_email  # noqa: E402
import generate_report  # noqa: E402
import process_import  # noqa: E402

ITEM_SECONDS = 0.002
DEADLINE = 60.0


@dataclass
class Example:
    """How to start one example and what it must have done in the end."""

    name: str
    module: str
    job: type[onward.Job]
    effect: str  # the effect recorded once per item
    start: Callable[[int, Path], onward.JobHandle]  # seeds n items, enqueues, returns the handle
    expected_keys: Callable[[], set[str]]
    check_final: Callable[[onward.JobRecord, Path, bool], None]  # (record, tmp, killed)
    isolated_steps: int = 0  # each isolated step after the first adds one resumption


def start_import(n: int, tmp: Path) -> onward.JobHandle:
    return process_import.ProcessImportJob.perform_later(app_db.create_import(n))


def start_import_each(n: int, tmp: Path) -> onward.JobHandle:
    return process_import.ProcessImportEachJob.perform_later(app_db.create_import(n))


def import_keys() -> set[str]:
    return {str(r[0]) for r in app_db.connect().execute("SELECT id FROM import_records")}


def check_import(record: onward.JobRecord, tmp: Path, killed: bool) -> None:
    assert app_db.connect().execute("SELECT status FROM imports").fetchone()[0] == "completed"
    # self.state's count is restored with the cursor; after a kill, a save made while an
    # item was in flight may already hold that item's count
    expected = len(import_keys())
    assert expected <= record.result <= expected + (1 if killed else 0)


def start_emails(n: int, tmp: Path) -> onward.JobHandle:
    app_db.create_users(n)
    return bulk_welcome_email.BulkWelcomeEmailJob.perform_later({"plan": "paid"})


def start_emails_each(n: int, tmp: Path) -> onward.JobHandle:
    app_db.create_users(n)
    return bulk_welcome_email.BulkWelcomeEmailEachJob.perform_later({"plan": "paid"})


def email_keys() -> set[str]:
    return {str(r[0]) for r in app_db.connect().execute("SELECT id FROM users WHERE plan = 'paid'")}


def check_emails(record: onward.JobRecord, tmp: Path, killed: bool) -> None:
    # the continuation ran exactly once, after the final success
    assert len(record.children) == 1
    assert onward.get_job(record.children[0]).state == "succeeded"
    assert app_db.effects("bulk_email_metrics") == [f"paid:{len(email_keys())}"]
    assert app_db.effects("bulk_email_finished") == ["paid"]


def start_report(n: int, tmp: Path) -> onward.JobHandle:
    app_db.create_sales(n)
    return generate_report.GenerateReportJob.perform_later(str(tmp / "report.csv"))


def start_report_each(n: int, tmp: Path) -> onward.JobHandle:
    app_db.create_sales(n)
    return generate_report.GenerateReportEachJob.perform_later(str(tmp / "report.csv"))


def sale_keys() -> set[str]:
    return {str(r[0]) for r in app_db.connect().execute("SELECT id FROM sales")}


def check_report(record: onward.JobRecord, tmp: Path, killed: bool) -> None:
    # totals live in self.state, saved with the cursor: exact even after a kill
    assert generate_report.read_report(str(tmp / "report.csv")) == app_db.expected_totals()
    assert record.result == app_db.expected_totals()


EXAMPLE_LIST = [
    Example(
        "import", "process_import", process_import.ProcessImportJob, "imported", start_import, import_keys, check_import
    ),
    Example(
        "emails",
        "bulk_welcome_email",
        bulk_welcome_email.BulkWelcomeEmailJob,
        "welcome_email",
        start_emails,
        email_keys,
        check_emails,
    ),
    Example(
        "report",
        "generate_report",
        generate_report.GenerateReportJob,
        "aggregated",
        start_report,
        sale_keys,
        check_report,
        isolated_steps=1,  # "render"
    ),
    # the same three, their loops written with step.each over iterate.rows
    Example(
        "import-each",
        "process_import",
        process_import.ProcessImportEachJob,
        "imported",
        start_import_each,
        import_keys,
        check_import,
    ),
    Example(
        "emails-each",
        "bulk_welcome_email",
        bulk_welcome_email.BulkWelcomeEmailEachJob,
        "welcome_email",
        start_emails_each,
        email_keys,
        check_emails,
    ),
    Example(
        "report-each",
        "generate_report",
        generate_report.GenerateReportEachJob,
        "aggregated",
        start_report_each,
        sale_keys,
        check_report,
        isolated_steps=1,
    ),
]


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EXAMPLES_APP_DB", str(tmp_path / "app.sqlite3"))
    monkeypatch.setenv("EXAMPLES_ITEM_SECONDS", str(ITEM_SECONDS))
    return tmp_path


class WorkerProcess:
    """``onward worker`` in a subprocess, its output in a file (a full pipe would block it)."""

    def __init__(self, example: Example, store: onward.Store, tmp: Path, env: dict[str, str], *args: str) -> None:
        env = dict(env)
        env["PYTHONPATH"] = os.pathsep.join([str(EXAMPLES), env.get("PYTHONPATH", "")])
        env["EXAMPLES_APP_DB"] = os.environ["EXAMPLES_APP_DB"]
        env["EXAMPLES_ITEM_SECONDS"] = os.environ["EXAMPLES_ITEM_SECONDS"]
        self.log = tmp / f"worker-{time.monotonic_ns()}.log"
        command = [sys.executable, "-m", "onward", "worker", "--import", example.module]
        command += ["--database-url", store.url, *args]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                command,
                cwd=EXAMPLES,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait(self, timeout: float = DEADLINE) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"worker did not exit:\n{self.log.read_text()}") from None


poll = functools.partial(waiting.poll, timeout=DEADLINE, interval=0.01)


def duplicates(keys: list[str]) -> int:
    return sum(count - 1 for count in Counter(keys).values())


def finish(
    example: Example, store: onward.Store, app: Path, env: dict[str, str], handle: onward.JobHandle, killed: bool
) -> None:
    """Run a burst worker to the end; check that every item was processed."""
    worker = WorkerProcess(example, store, app, env, "--burst")
    assert worker.wait() == 0, worker.log.read_text()
    record = handle.refresh()
    assert record.state == "succeeded", record.error
    assert set(app_db.effects(example.effect)) == example.expected_keys()  # none lost
    assert record.steps[-1].status == "completed"
    example.check_final(record, app, killed)


@pytest.mark.parametrize("example", EXAMPLE_LIST, ids=lambda e: e.name)
def test_example_stopped_gracefully_repeats_nothing(
    example: Example, sqlite_store: onward.Store, app: Path, subprocess_env: dict[str, str]
) -> None:
    handle = example.start(600, app)
    worker = WorkerProcess(example, sqlite_store, app, subprocess_env)
    poll(lambda: len(app_db.effects(example.effect)) >= 50, "the job to make progress")
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.log.read_text()

    record = handle.refresh()
    assert record.state == "enqueued"  # interrupted: back in the queue, same id
    assert record.resumptions == 1
    assert record.attempts == 1
    assert record.children == ()  # no continuation ran
    done = app_db.effects(example.effect)
    assert 50 <= len(done) < len(example.expected_keys())
    assert duplicates(done) == 0

    finish(example, sqlite_store, app, subprocess_env, handle, killed=False)
    assert duplicates(app_db.effects(example.effect)) == 0  # a graceful stop repeats nothing
    record = handle.refresh()
    assert (record.attempts, record.resumptions) == (1, 1 + example.isolated_steps)


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLE_LIST, ids=lambda e: e.name)
def test_example_killed_loses_nothing_and_repeats_within_the_bound(
    example: Example, sqlite_store: onward.Store, app: Path, subprocess_env: dict[str, str]
) -> None:
    interval = example.job.checkpoint_interval
    per_interval = math.ceil(interval / ITEM_SECONDS)  # items take at least ITEM_SECONDS each
    n = 3 * per_interval
    handle = example.start(n, app)
    worker = WorkerProcess(example, sqlite_store, app, subprocess_env, "--lease-timeout", "1")
    # kill once a throttled checkpoint has been saved mid-step, partway through
    poll(lambda: (handle.refresh().steps or [None])[-1] is not None and _saved_cursor(handle), "a checkpoint")
    poll(lambda: len(app_db.effects(example.effect)) >= n // 2, "the job to get halfway")
    worker.proc.kill()
    worker.wait()

    record = handle.refresh()
    assert record.state == "running"  # nobody knows yet that its worker died
    poll(
        lambda: (handle.refresh().lease_expires_at or datetime.now(UTC)) < datetime.now(UTC),
        "the lease to expire",
    )
    finish(example, sqlite_store, app, subprocess_env, handle, killed=True)
    record = handle.refresh()
    assert record.attempts == 1  # the execution saved progress: a resumption, not an attempt
    assert record.resumptions == 1 + example.isolated_steps
    repeated = duplicates(app_db.effects(example.effect))
    # the item in flight, plus the items advanced since the last save (one interval at most)
    assert repeated <= 1 + per_interval, f"{repeated} items ran twice"


def _saved_cursor(handle: onward.JobHandle) -> bool:
    steps = handle.refresh().steps
    return any(s.status == "running" and s.cursor is not None for s in steps)

"""What ``onward watch`` draws fits the terminal: on a narrow one the id column goes first,
then the bar shrinks, then names are shortened; DONE, RATE, ETA and the time are never cut.

Rendered by a rich Console of a fixed width that records its output, at a fixed clock."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from rich.console import Console

from onward.admin import JobDetail, RunningJob, TreeNode, step_progress
from onward.cli import inspection, render
from onward.records import JobRecord, State, StepRecord

NOW = datetime(2026, 11, 28, 15, 0, 20, tzinfo=UTC)
BAR = ("━", "╸", "╺")


def running_record(job_class: str, job_id: str, steps: list[StepRecord], ran: float) -> JobRecord:
    started = NOW - timedelta(seconds=ran)
    return JobRecord(
        id=job_id,
        job_class=job_class,
        queue="imports",
        priority=0,
        args=[],
        kwargs={},
        state=State.RUNNING,
        attempts=1,
        resumptions=0,
        scheduled_at=started,
        enqueued_at=started,
        started_at=started,
        finished_at=None,
        error=None,
        continuation_error=None,
        parent_id=None,
        children=(),
        result=None,
        job_state={},
        steps=steps,
        progress=None,
    )


def step(name: str, cursor: object, advanced: int, total: int | None, ran: float, done: bool = False) -> StepRecord:
    started = NOW - timedelta(seconds=ran)
    completed = NOW if done else None
    return StepRecord(name, "completed" if done else "running", cursor, advanced, total, started, completed)


IMPORT = running_record(
    "shop.imports:ImportCustomers",
    "01a222ab-c85b-71eb-8f96-2483b34cca4a",
    [step("prepare", None, 0, None, 7.4, done=True), step("import", 29760, 29760, 48000, 6.2)],
    7.5,
)
MAIL = running_record(
    "app.mail:BulkWelcomeEmail",
    "01a2229d-2e12-74a6-abd1-65d2090f93b3",
    [step("send_emails", {"after_user_id": 1008}, 1007, 3000, 3.1)],
    73.0,
)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "time", SimpleNamespace(time=NOW.timestamp))


def rendered(renderable: object, width: int) -> list[str]:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None, highlight=False)
    console.print(renderable)
    lines = console.export_text().splitlines()
    assert all(len(line) <= width for line in lines), lines
    return lines


def line_of(lines: list[str], *words: str) -> str:
    found = [line for line in lines if all(w in line for w in words)]
    assert len(found) == 1, (words, lines)
    return found[0]


def running() -> list[RunningJob]:
    now = NOW.timestamp()
    return [RunningJob(job, step_progress(job.steps[-1], now)) for job in (IMPORT, MAIL)]


@pytest.mark.parametrize("width", [80, 120, 100, 64])
def test_watching_every_running_job_never_cuts_the_figures(width: int) -> None:
    lines = rendered(inspection._all_view(running()), width)
    assert lines[0].startswith("2 running jobs")
    header = line_of(lines, "DONE")
    assert header.split()[-4:] == ["DONE", "RATE", "ETA", "FOR"]
    # ImportCustomers: 29,760 of 48,000 in 6.2 s (4,800/s), 3.8 s left, running for 7.5 s.
    imports = line_of(lines, "import ")
    assert imports.split()[-4:] == ["29760/48000", "4,800/s", "3.8s", "7.5s"]
    assert any(mark in imports for mark in BAR)
    mails = line_of(lines, "send_")
    assert mails.split()[-4:] == ["1007/3000", "325/s", "6.1s", "1m13s"]
    if width >= 120:
        assert IMPORT.id in imports
        assert "ImportCustomers" in imports
        assert "send_emails" in mails
    else:
        assert "01a222ab" not in imports  # the id column went first
    if width >= 80:
        assert "ImportCustomers" in imports  # and the names stay whole while the bar can shrink
        assert "BulkWelcomeEmail" in mails


@pytest.mark.parametrize("width", [80, 120, 64])
def test_watching_one_job_never_cuts_the_figures(width: int) -> None:
    now = NOW.timestamp()
    steps = [step_progress(s, now) for s in IMPORT.steps]
    detail = JobDetail(IMPORT, steps, TreeNode(IMPORT.id, IMPORT.job_class, "running"))
    lines = rendered(inspection._job_view(detail), width)
    assert "1 attempt, 0 resumptions" in " ".join(" ".join(lines).split())
    header = line_of(lines, "DONE").split()
    assert header[-3:] == ["ETA", "/", "TOOK"]
    assert header[header.index("DONE") + 1] == "%"
    # columns: mark, step, bar, done, %, [cursor,] rate, eta or time taken
    prepare = line_of(lines, "prepare").split()
    imports = line_of(lines, "import ").split()
    assert imports[:2] == ["▶", "import"]
    assert any(mark in imports[2] for mark in BAR)
    assert imports[3:5] == ["29760/48000", "62%"]
    assert imports[-2:] == ["4,800/s", "3.8s"]
    assert prepare[3:5] == ["-", "100%"]
    assert prepare[-2:] == ["-", "7.4s"]
    if width >= 80:  # the cursor, when there is room for it ("-" for none, as on the dashboard)
        assert imports[5] == "29760"
        assert prepare[5] == "-"

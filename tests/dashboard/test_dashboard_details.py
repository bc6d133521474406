"""What the pages say about a job, on each store: the time and count of each step, the
timeline's wording, counts in words, and a failed job's error in the jobs list."""

from __future__ import annotations

import html
import re
import time
from types import SimpleNamespace

import dashboard_jobs as dj
import pytest
from dashboard_helpers import TestClient

import onward
from onward import admin
from onward.admin import Admin, format_duration
from onward.cli import render
from onward.testing import drain, interrupt_during_step


def step_rows(page: str) -> dict[str, dict[str, str]]:
    """Each step row of a job page: its cells by ``data-field``, as text."""
    rows = {}
    for body in re.findall(r'<tr data-step="\d+">(.*?)</tr>', page, re.S):
        name = re.search(r'class="step-name">([^<]+)<', body)
        assert name is not None
        cells = re.findall(r'data-field="([\w-]+)"[^>]*>([^<]*)<', body)
        rows[html.unescape(name.group(1))] = {k: html.unescape(v).strip() for k, v in cells}
    return rows


def timeline(page: str) -> list[str]:
    section = re.search(r'<ol class="timeline">(.*?)</ol>', page, re.S)
    assert section is not None
    return [html.unescape(t) for t in re.findall(r'<span class="what">([^<]+)</span>', section.group(1))]


def row(page: str, job_id: str) -> str:
    match = re.search(rf'<tr data-job="{job_id}">(.*?)</tr>', page, re.S)
    assert match, f"no row for {job_id}"
    return match.group(1)


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Make the dashboard read the store ``seconds`` from now."""
    clock = time.time
    monkeypatch.setattr(admin, "time", SimpleNamespace(time=lambda: clock() + seconds))


def test_a_finished_jobs_steps_keep_the_time_they_ran(
    store: onward.Store, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job discarded while its step was interrupted: the step ran until the job ended, and
    a page opened a minute later says the same as one opened at once."""
    job_id = dj.StopsInStep.perform_later(3).id
    drain()
    Admin(store).discard(job_id)
    record = store.get(job_id)
    assert record.state == "discarded"
    assert record.finished_at is not None
    load = record.steps[1]
    assert (load.status, load.completed_at) == ("interrupted", None)
    assert load.started_at is not None
    ran = record.finished_at.timestamp() - load.started_at.timestamp()

    later(monkeypatch, 64)
    rows = step_rows(client.get(f"/jobs/{job_id}").text)
    assert rows["load"]["elapsed"] == format_duration(ran)
    assert rows["load"]["eta"] == "-"  # the job ended: nothing is left to wait for
    data = client.get(f"/api/jobs/{job_id}").json()["steps"][1]
    assert data["elapsed"] == pytest.approx(ran, abs=0.001)
    assert data["eta"] is None
    assert data["rate"] == pytest.approx(3 / ran if ran else None)


def test_a_finished_steps_time_ends_when_it_completed(
    store: onward.Store, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    dj.THROTTLE.open()
    job_id = dj.Stepped.perform_later(3).id
    drain()
    process = store.get(job_id).steps[1]
    assert process.started_at is not None
    assert process.completed_at is not None
    later(monkeypatch, 64)
    took = process.completed_at.timestamp() - process.started_at.timestamp()
    assert step_rows(client.get(f"/jobs/{job_id}").text)["process"]["elapsed"] == format_duration(took)


def test_done_shows_what_the_command_line_shows(store: onward.Store, client: TestClient) -> None:
    """A step that saved nothing and has no total shows "-" in both, not "0"."""
    dj.THROTTLE.open()
    stepped = dj.Stepped.perform_later(12).id
    stopped = dj.StopsInStep.perform_later(0).id
    drain()
    for job_id in (stepped, stopped):
        rows = step_rows(client.get(f"/jobs/{job_id}").text)
        for step in Admin(store).job(job_id).steps:
            shown = rows[step.name]["count"]
            assert shown.replace(" ", "").replace(",", "") == render.counts(step).replace(",", ""), step
    assert step_rows(client.get(f"/jobs/{stepped}").text)["prepare"]["count"] == "-"
    assert step_rows(client.get(f"/jobs/{stepped}").text)["process"]["count"] == "12 / 12"
    assert step_rows(client.get(f"/jobs/{stopped}").text)["load"]["count"] == "0 / 10"


def test_the_timeline_names_the_cursor_only_when_there_is_one(store: onward.Store, client: TestClient) -> None:
    before_any = dj.StopsInStep.perform_later(0).id
    after_two = dj.StopsInStep.perform_later(2).id
    drain()
    assert store.get(before_any).steps[1].cursor is None
    events = timeline(client.get(f"/jobs/{before_any}").text)
    assert "Step 'load' interrupted before saving a cursor" in events
    assert not any("null" in e or "None" in e for e in events), events
    cursor = store.get(after_two).steps[1].cursor
    assert f"Step 'load' interrupted at cursor {cursor}" in timeline(client.get(f"/jobs/{after_two}").text)


def test_counts_are_in_words_with_their_plural(store: onward.Store, client: TestClient) -> None:
    waiting = dj.StopsInStep.perform_later(1).id  # tried once, waiting to try again
    flaky = dj.Flaky.perform_later().id
    drain()
    assert "1 attempt so far" in timeline(client.get(f"/jobs/{waiting}").text)
    assert "2 attempts in all" in timeline(client.get(f"/jobs/{flaky}").text)
    assert not any("1 attempts" in e for e in timeline(client.get(f"/jobs/{waiting}").text))

    dj.THROTTLE.open()
    resumed = dj.Stepped.perform_later(3).id
    with interrupt_during_step(dj.Stepped, "process", cursor=2):
        drain()
    assert store.get(resumed).resumptions == 1
    listed = row(client.get("/jobs").text, resumed)
    assert "+1r" not in listed
    assert "resumed once" in listed
    assert 'title="interrupted and resumed from its checkpoint once"' in listed
    assert "1 resumption: interrupted, then resumed from its checkpoint" in timeline(
        client.get(f"/jobs/{resumed}").text
    )


def test_failed_rows_show_the_last_line_of_their_error(store: onward.Store, client: TestClient) -> None:
    short = dj.Boom.perform_later("the disk is full").id
    long = dj.Boom.perform_later("<b>" + "x" * 300).id
    fine = dj.Quick.perform_later().id
    drain()
    page = client.get("/jobs").text
    error = re.search(r'<div class="error-line[^"]*" title="([^"]*)">([^<]*)</div>', row(page, short))
    assert error is not None
    assert html.unescape(error.group(2)) == "builtins.ValueError: the disk is full"
    cut = re.search(r'<div class="error-line[^"]*" title="([^"]*)">([^<]*)</div>', row(page, long))
    assert cut is not None
    assert html.unescape(cut.group(1)) == "builtins.ValueError: <b>" + "x" * 300  # in full on hover
    shown = html.unescape(cut.group(2))
    assert shown.startswith("builtins.ValueError: <b>xxx")
    assert shown.endswith("…")
    assert len(shown) <= 120
    assert "<b>" not in row(page, long)  # escaped
    assert "error-line" not in row(page, fine)

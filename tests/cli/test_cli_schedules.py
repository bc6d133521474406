"""onward schedules (list, --json), onward schedules pause KEY / resume KEY, onward jobs --schedule."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import Result

import onward
from jobs_schedules import Tick
from onward import Store
from onward.testing import run_schedules

Invoke = Callable[..., Result]  # the onward_cli fixture (tests/cli/conftest.py)
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_schedules_lists_each_schedule_with_its_ticks_and_last_job(onward_cli: Invoke, store: Store) -> None:
    onward.schedule("nightly-report", Tick, cron="0 3 * * *", timezone="Europe/Paris")
    onward.schedule("ping", Tick, every=30)
    run_schedules(T0)
    [job] = run_schedules(T0 + timedelta(seconds=31))
    result = onward_cli("schedules")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "KEY",
        "JOB",
        "TICKS",
        "NEXT",
        "TICK",
        "LAST",
        "TICK",
        "LAST",
        "JOB",
        "STATUS",
        "WORKER",
    ]
    nightly = next(line for line in lines if line.startswith("nightly-report"))
    assert "0 3 * * * (Europe/Paris)" in nightly
    assert "2024-05-02 01:00:00 UTC" in nightly  # 03:00 in Paris
    assert nightly.split()[-2:] == ["active", "none"]
    ping = next(line for line in lines if line.startswith("ping"))
    assert "every 30s" in ping
    assert "2024-05-01 12:01:00 UTC" in ping  # next tick
    assert "2024-05-01 12:00:30 UTC" in ping  # last tick
    assert f"…{job.id[-8:]} enqueued" in ping


def test_schedules_json(onward_cli: Invoke, store: Store) -> None:
    onward.schedule("ping", Tick, every=30, kwargs={"n": 1})
    run_schedules(T0)
    result = onward_cli("schedules", "--json")
    assert result.exit_code == 0, result.output
    [ping] = json.loads(result.output)
    assert ping["key"] == "ping"
    assert ping["job_class"] == "jobs_schedules:Tick"
    assert (ping["every"], ping["cron"], ping["timezone"], ping["expression"]) == (30.0, None, "UTC", "every 30s")
    assert ping["next_tick"] == "2024-05-01T12:00:30+00:00"
    assert ping["settings"]["kwargs"] == {"n": 1}
    assert (ping["paused"], ping["live"], ping["last_tick"]) == (False, False, None)


def test_no_schedules(onward_cli: Invoke) -> None:
    result = onward_cli("schedules")
    assert result.exit_code == 0
    assert result.output.startswith("No schedules.")


def test_pause_and_resume(onward_cli: Invoke, store: Store) -> None:
    onward.schedule("ping", Tick, every=30)
    run_schedules(T0)
    result = onward_cli("schedules", "pause", "ping")
    assert (result.exit_code, result.output) == (0, "Schedule 'ping' is paused.\n")
    assert store.list_schedules()[0].paused
    assert "paused" in onward_cli("schedules").output
    assert run_schedules(T0 + timedelta(minutes=5)) == []
    result = onward_cli("schedules", "resume", "ping")
    assert result.exit_code == 0
    assert result.output.startswith("Schedule 'ping' is resumed; next tick ")
    assert not store.list_schedules()[0].paused


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_an_unknown_key_is_a_one_line_error(onward_cli: Invoke, action: str) -> None:
    result = onward_cli("schedules", action, "nope")
    assert result.exit_code == 1
    assert result.output == "Error: no schedule with key 'nope'\n"


def test_jobs_of_a_schedule(onward_cli: Invoke, store: Store) -> None:
    onward.schedule("ping", Tick, every=30, overlap=True)
    run_schedules(T0)
    handles = run_schedules(T0 + timedelta(seconds=31)) + run_schedules(T0 + timedelta(seconds=61))
    Tick.perform_later()
    result = onward_cli("jobs", "--schedule", "ping")
    assert result.exit_code == 0
    assert sorted(line.split()[0] for line in result.output.splitlines()[1:]) == sorted(h.id for h in handles)
    assert onward_cli("jobs", "--schedule", "other").output.strip() == "No jobs match."


def test_show_names_the_schedule_and_tick(onward_cli: Invoke, store: Store) -> None:
    onward.schedule("ping", Tick, every=30)
    run_schedules(T0)
    [job] = run_schedules(T0 + timedelta(seconds=31))
    result = onward_cli("show", job.id)
    assert result.exit_code == 0, result.output
    assert re.search(r"schedule +ping, tick 2024-05-01T12:00:30\+00:00", result.output), result.output

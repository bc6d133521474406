"""API §10: declaring schedules. Every bad declaration raises at once, naming the schedule."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

import onward
from jobs_schedules import Other, Tick
from onward import Schedule, SerializationError, schedules


def test_a_schedule_is_declared_with_cron_or_every_and_keeps_its_settings() -> None:
    nightly = onward.schedule(
        "nightly-report", Tick, cron="0 3 * * *", timezone="Europe/Paris", args=("daily",), kwargs={"n": 1}
    )
    ping = onward.schedule("ping", Other, every=timedelta(seconds=30))
    assert isinstance(nightly, Schedule)
    assert (nightly.key, nightly.job_class, nightly.cron, nightly.every) == ("nightly-report", Tick, "0 3 * * *", None)
    assert (nightly.timezone, nightly.args, nightly.kwargs) == ("Europe/Paris", ("daily",), {"n": 1})
    assert (nightly.missed, nightly.overlap, nightly.queue, nightly.priority) == ("latest", False, "default", 0)
    assert nightly.expression == "0 3 * * * (Europe/Paris)"
    assert (ping.every, ping.cron, ping.timezone, ping.expression) == (timedelta(seconds=30), None, "UTC", "every 30s")
    assert schedules.declared() == [nightly, ping]
    with pytest.raises(AttributeError, match="cannot be changed"):
        ping.every = timedelta(seconds=1)  # type: ignore[misc]


def test_every_takes_seconds_too_and_ticks_at_whole_multiples_since_the_epoch() -> None:
    s = onward.schedule("every-90", Tick, every=90)
    assert s.every == timedelta(seconds=90)
    after = datetime(2024, 5, 1, 12, 0, 10, tzinfo=UTC)
    assert s.next_tick(after) == datetime(2024, 5, 1, 12, 1, 30, tzinfo=UTC)  # 12:01:30 is 90 s * k
    half = onward.schedule("every-half", Tick, every=0.5)
    assert half.next_tick(datetime(2024, 5, 1, 12, 0, 0, 200_000, tzinfo=UTC)) == datetime(
        2024, 5, 1, 12, 0, 0, 500_000, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("@hourly", datetime(2024, 1, 1, 10, 30), datetime(2024, 1, 1, 11, 0)),
        ("@daily", datetime(2024, 1, 1, 10, 30), datetime(2024, 1, 2, 0, 0)),
        ("@weekly", datetime(2024, 1, 1, 10, 30), datetime(2024, 1, 7, 0, 0)),  # Sunday
        ("@monthly", datetime(2024, 1, 15), datetime(2024, 2, 1)),
        ("@yearly", datetime(2024, 1, 15), datetime(2025, 1, 1)),
        ("*/15 * * * * *", datetime(2024, 1, 1, 10, 30, 7), datetime(2024, 1, 1, 10, 30, 15)),  # leading seconds
        ("30 2 * * 1-5", datetime(2024, 1, 6, 12, 0), datetime(2024, 1, 8, 2, 30)),  # Saturday -> Monday
    ],
)
def test_cron_takes_five_fields_six_with_leading_seconds_and_the_at_names(
    expression: str, after: datetime, expected: datetime
) -> None:
    s = onward.schedule(f"cron {expression}", Tick, cron=expression)
    assert s.next_tick(after.replace(tzinfo=UTC)) == expected.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron": "61 * * * *"}, r"schedule 'bad': bad cron expression '61 \* \* \* \*'"),
        ({"cron": "* * *"}, r"schedule 'bad': cron expression '\* \* \*' has 3 fields"),
        ({"cron": "0 0 1 1 * 0 2030"}, r"schedule 'bad': .*has 7 fields"),
        ({"cron": "@fortnightly"}, r"schedule 'bad': unknown cron expression '@fortnightly'"),
        ({"cron": "0 0 31 2 *"}, r"schedule 'bad': cron expression '0 0 31 2 \*' never matches a date"),
        ({"cron": ""}, r"schedule 'bad': cron must be a non-empty str"),
        ({"cron": "0 3 * * *", "timezone": "Mars/Olympus"}, r"schedule 'bad': unknown timezone 'Mars/Olympus'"),
        ({"every": 60, "timezone": ""}, r"schedule 'bad': the timezone must be an IANA name"),
        ({}, r"schedule 'bad': give exactly one of cron= and every="),
        ({"cron": "* * * * *", "every": 60}, r"schedule 'bad': give exactly one of cron= and every=, not both"),
        ({"every": 0}, r"schedule 'bad': every must be positive"),
        ({"every": -5}, r"schedule 'bad': every must be positive"),
        ({"every": float("nan")}, r"schedule 'bad': every must be a finite number of seconds"),
        ({"every": "1m"}, r"schedule 'bad': every must be a timedelta or seconds"),
        ({"every": 60, "missed": "some"}, r"schedule 'bad': missed must be one of 'latest', 'all', 'skip'"),
        ({"every": 60, "overlap": "no"}, r"schedule 'bad': overlap must be True or False"),
        ({"every": 60, "queue": ""}, r"schedule 'bad': queue must be a non-empty str"),
        ({"every": 60, "priority": "high"}, r"schedule 'bad': priority must be an int"),
        ({"every": 60, "args": "abc"}, r"schedule 'bad': args must be a tuple or list"),
    ],
)
def test_a_bad_declaration_raises_value_error_naming_the_schedule(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        onward.schedule("bad", Tick, **kwargs)  # type: ignore[arg-type]
    assert schedules.declared() == []


@pytest.mark.parametrize("key", ["", "   ", None, 42, "a\nb", "x" * 201])
def test_a_bad_key_raises_value_error(key: object) -> None:
    with pytest.raises(ValueError, match="schedule key"):
        onward.schedule(key, Tick, every=60)  # type: ignore[arg-type]


def test_the_job_class_must_be_an_importable_job() -> None:
    with pytest.raises(ValueError, match=r"schedule 'k': job_class must be an onward\.Job subclass"):
        onward.schedule("k", dict, every=60)  # type: ignore[arg-type]

    def local() -> type[onward.Job]:
        class Local(onward.Job):
            def perform(self) -> None: ...

        return Local

    with pytest.raises(ValueError, match=r"schedule 'k': .*defined inside a function"):
        onward.schedule("k", local(), every=60)


def test_arguments_that_cannot_be_stored_are_refused_naming_the_schedule_and_the_argument() -> None:
    with pytest.raises(SerializationError, match=r"schedule 'k': Tick: args\[0\]: set is not serializable"):
        onward.schedule("k", Tick, every=60, args=({1, 2},))
    with pytest.raises(SerializationError, match=r"schedule 'k': Tick: kwargs\['when'\]"):
        onward.schedule("k", Tick, every=60, kwargs={"when": object()})


def test_declaring_a_key_again_with_the_same_settings_returns_the_schedule_and_with_others_raises() -> None:
    first = onward.schedule("report", Tick, cron="0 3 * * *", timezone="Europe/Paris", args=(date(2024, 1, 1),))
    again = onward.schedule("report", Tick, cron="0  3 * * *", timezone="Europe/Paris", args=[date(2024, 1, 1)])
    assert again is first
    with pytest.raises(ValueError, match=r"schedule 'report': already declared .*cron='0 4 \* \* \*' \(was '0 3"):
        onward.schedule("report", Tick, cron="0 4 * * *", timezone="Europe/Paris", args=(date(2024, 1, 1),))
    with pytest.raises(ValueError, match=r"schedule 'report': already declared .*job_class="):
        onward.schedule("report", Other, cron="0 3 * * *", timezone="Europe/Paris")
    with pytest.raises(ValueError, match=r"schedule 'report': already declared .*missed='all'"):
        onward.schedule(
            "report", Tick, cron="0 3 * * *", timezone="Europe/Paris", args=(date(2024, 1, 1),), missed="all"
        )
    assert schedules.declared() == [first]


def test_next_tick_wants_an_aware_datetime() -> None:
    s = onward.schedule("k", Tick, every=60)
    with pytest.raises(ValueError, match="aware datetime"):
        s.next_tick(datetime(2024, 1, 1))
    assert s.next_tick() > datetime.now(UTC)


def test_importing_onward_and_declaring_every_schedules_does_not_import_the_cron_library(tmp_path: Path) -> None:
    code = (
        "import sys, datetime, onward\n"
        "class Ping(onward.Job):\n"
        "    def perform(self): pass\n"
        "onward.schedule('ping', Ping, every=datetime.timedelta(seconds=5))\n"
        "assert 'croniter' not in sys.modules, 'croniter imported'\n"
        "onward.schedule('nightly', Ping, cron='0 3 * * *')\n"
        "assert 'croniter' in sys.modules\n"
    )
    script = tmp_path / "declare_schedules.py"  # a script: a worker could import its classes
    script.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr

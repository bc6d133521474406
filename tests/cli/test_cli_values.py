"""The command line with values out of range: rows holding times no API call could store
are listed, shown and discarded; overflowing options get a clear message, not a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cli_jobs import Greet
from click.testing import CliRunner, Result

import rawsql
from onward import Store
from onward.cli import main
from onward.stores.base import JobFilter

Invoke = Callable[..., Result]


def test_jobs_show_and_discard_survive_a_row_with_times_out_of_range(store: Store, onward_cli: Invoke) -> None:
    job_id = Greet.perform_later("x").id
    rawsql.poison_times(store, job_id)
    listed = onward_cli("jobs")
    assert listed.exit_code == 0, listed.output
    assert job_id in listed.output
    for args in (("jobs", "--json"), ("show", job_id), ("show", job_id, "--json"), ("stats",)):
        result = onward_cli(*args)
        assert result.exit_code == 0, (args, result.output)
    assert "9999-12-30" in onward_cli("show", job_id).output
    discarded = onward_cli("discard", job_id)
    assert discarded.exit_code == 0, discarded.output
    assert "is discarded" in discarded.output


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_overflowing_options_are_refused_with_a_message_not_a_traceback(store: Store, onward_cli: Invoke) -> None:
    cases = [
        (("enqueue", "cli_jobs:Greet", "--delay", "99999999999999d"), "is too long"),
        (("enqueue", "cli_jobs:Greet", "--delay", "1e400"), "bad duration"),
        (("enqueue", "cli_jobs:Greet", "--priority", str(2**63)), "priority must be between -2147483648 and"),
        (("enqueue", "cli_jobs:Greet", "--args", _nested(5000)), "--args is nested too deeply"),
        (("enqueue", "cli_jobs:Greet", "--args", f"[{_nested(150)}]"), "nested deeper than 100 levels"),
        (("enqueue", "cli_jobs:Greet", "--args", "[1e999]"), "float inf is not serializable"),
        (("enqueue", "cli_jobs:Greet", "--queue", "a\x00b"), "control character"),
        (("purge", "--older-than", "99999999999999d"), "is too long"),
    ]
    for args, message in cases:
        result = onward_cli(*args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert store.list_jobs(JobFilter()) == []


def test_worker_timeouts_out_of_range_are_usage_errors(store: Store, onward_cli: Invoke) -> None:
    for option in ("--lease-timeout", "--shutdown-timeout"):
        for value in ("nan", "inf", "1e400", str(10**9)):
            result = onward_cli("worker", "--burst", option, value)
            assert result.exit_code == 2, (option, value, result.output)
            assert option in result.output


def _with_option(url: str, option: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{option}"


def test_unknown_url_options_are_refused(store_url: str, onward_cli: Invoke) -> None:
    result = onward_cli("jobs", url=_with_option(store_url, "bogus=1"))
    assert result.exit_code == 1
    assert "bogus" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("value", ["-1", "nan", "1e999", "soon"])
def test_a_bad_reconnect_timeout_is_refused(store_url: str, onward_cli: Invoke, value: str) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("reconnect_timeout is an option of PostgreSQL URLs")
    result = onward_cli("jobs", url=_with_option(store_url, f"reconnect_timeout={value}"))
    assert result.exit_code == 1, result.output
    assert "reconnect_timeout" in result.output


@pytest.mark.parametrize(
    "command",
    [("jobs",), ("show", "0000"), ("stats",), ("watch",), ("schedules",), ("retry", "0000"), ("discard", "0000")],
)
def test_commands_on_a_sqlite_path_with_no_store_say_so_and_create_nothing(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    missing = tmp_path / "typo.sqlite3"
    result = CliRunner().invoke(main, [*command, "--database-url", f"sqlite:///{missing}"], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert f"there is no Onward store at {missing}" in result.output
    assert list(tmp_path.iterdir()) == []


def test_the_dashboard_on_a_sqlite_path_with_no_store_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "typo.sqlite3"
    result = CliRunner().invoke(main, ["dashboard", "--database-url", f"sqlite:///{missing}"], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert "there is no Onward store" in result.output
    assert list(tmp_path.iterdir()) == []

"""API §5 and §9: errors are recorded whatever the exception does. An exception whose
``__str__`` raises keeps its type; a huge message is stored and logged with its head and
tail only; a message with line breaks is logged on one line with its ``module.Type:``."""

from __future__ import annotations

import logging

import pytest

import onward
from jobs_values import RaisesHuge, RaisesMultiline, RaisesUnprintable, UnprintableError
from onward import Store
from onward.errors import MAX_ERROR_CHARS, MAX_SUMMARY_CHARS


def run_burst() -> None:
    onward.Worker(lease_timeout=10).run(burst=True)


def test_an_exception_whose_str_raises_fails_the_job_keeping_its_type(store: Store) -> None:
    handle = RaisesUnprintable.perform_later()
    run_burst()
    record = handle.refresh()
    assert record.state == "failed"
    assert record.error is not None
    assert record.error.rstrip().splitlines()[-1] == (
        "jobs_values.UnprintableError: <str() of this UnprintableError raised RuntimeError>"
    )


def test_perform_now_records_an_exception_whose_str_raises(store: Store) -> None:
    with pytest.raises(UnprintableError):
        RaisesUnprintable.perform_now()
    [record] = store.list_jobs(onward.stores.base.JobFilter())
    assert record.state == "failed"
    assert "jobs_values.UnprintableError: <str()" in (record.error or "")


def test_a_huge_message_is_stored_and_logged_with_its_head_and_tail_only(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    handle = RaisesHuge.perform_later(20_000_000)
    with caplog.at_level(logging.INFO, logger="onward"):
        run_burst()
    record = handle.refresh()
    assert record.state == "failed"
    error = record.error or ""
    assert len(error) <= MAX_ERROR_CHARS
    assert "builtins.ValueError: HEAD" in error
    assert error.endswith("TAIL")
    assert "characters cut" in error
    [failed] = [r for r in caplog.records if getattr(r, "event", None) == "failed"]
    line = failed.getMessage()
    assert "\n" not in line
    assert len(line) <= MAX_SUMMARY_CHARS + 200
    assert "builtins.ValueError: HEAD" in line


def test_a_message_with_line_breaks_is_logged_on_one_line_with_its_type(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    handle = RaisesMultiline.perform_later()
    with caplog.at_level(logging.INFO, logger="onward"):
        run_burst()
    assert handle.refresh().state == "failed"
    assert handle.refresh().error.endswith("builtins.ValueError: first line\nsecond line\nthird: line")  # type: ignore[union-attr]
    logged = [r.getMessage() for r in caplog.records if getattr(r, "event", None) in ("retry_scheduled", "failed")]
    assert len(logged) == 2  # one line per event
    for line in logged:
        assert "\n" not in line
        assert r"builtins.ValueError: first line\nsecond line\nthird: line" in line

"""Worker logging: one line per job event, as text or as one JSON object per line."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from cli_jobs import Flaky

from onward import Store, logs
from onward.testing import drain, interrupt_during_step


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("onward.worker", logging.INFO, __file__, 1, "job %s done", ("j1",), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_formatter_fields() -> None:
    line = logs.JsonFormatter().format(_record(job_id="j1", event="succeeded", attempt=2))
    data = json.loads(line)
    assert data["level"] == "INFO"
    assert data["logger"] == "onward.worker"
    assert data["message"] == "job j1 done"
    assert (data["job_id"], data["event"], data["attempt"]) == ("j1", "succeeded", 2)
    assert data["time"].endswith("Z")
    assert "\n" not in line


def test_json_formatter_keeps_the_traceback_on_one_line() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line
    assert json.loads(line)["traceback"].splitlines()[-1] == "ValueError: bad"


def test_text_formatter_names_the_job_when_the_message_does_not() -> None:
    text = logs.TextFormatter()
    assert text.format(_record(job_id="abc")).endswith("onward.worker: job j1 done [job abc]")
    assert text.format(_record(job_id="j1")).endswith("onward.worker: job j1 done")


def test_configure_replaces_its_own_handler(restore_logging: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    logs.configure("INFO", "json", first)
    logs.configure("INFO", "text", second)
    logging.getLogger("onward.test").info("hello")
    assert first.getvalue() == ""
    assert second.getvalue().rstrip().endswith("onward.test: hello")
    with pytest.raises(ValueError, match="unknown log format"):
        logs.configure("INFO", "xml")


def test_worker_logs_interruption_and_resumption_with_where(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onward")
    with interrupt_during_step(Flaky, "process", cursor=4):
        handle = Flaky.perform_later()
        drain()
    assert handle.refresh().state == "succeeded"
    events = [(r.event, r.getMessage()) for r in caplog.records if getattr(r, "job_id", None) == handle.id]  # type: ignore[attr-defined]
    names = [e for e, _ in events]
    assert names == [
        "started",
        "step_started",
        "step_completed",
        "step_started",
        "interrupted",
        "resumed",
        "step_skipped",
        "step_resumed",
        "step_completed",
        "succeeded",
    ]
    messages = dict(events)
    assert "'process'" in messages["interrupted"]
    assert "cursor 4" in messages["interrupted"]
    assert "at step 'process'" in messages["resumed"]
    assert "resumed at cursor 4" in messages["step_resumed"]


def test_worker_log_format_json(store: Store, store_url: str, cli_env: dict[str, str]) -> None:
    handle = Flaky.perform_later()
    command = [sys.executable, "-m", "onward", "worker", "--burst", "--log-format", "json"]
    result = subprocess.run(
        [*command, "--database-url", store_url], capture_output=True, text=True, env=cli_env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]  # every line is one JSON object
    events = [(line["event"], line["logger"]) for line in lines if line.get("job_id") == handle.id]
    assert events == [
        ("started", "onward.worker"),
        ("step_started", "onward.steps"),
        ("step_completed", "onward.steps"),
        ("step_started", "onward.steps"),
        ("step_completed", "onward.steps"),
        ("succeeded", "onward.worker"),
    ]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    [started] = [line for line in lines if line.get("event") == "worker_started"]
    # every job event line names the worker that ran the job
    assert {line["worker_id"] for line in lines if line.get("job_id") == handle.id} == {started["worker_id"]}


def test_worker_log_format_text(store: Store, store_url: str, cli_env: dict[str, str]) -> None:
    handle = Flaky.perform_later()
    command = [sys.executable, "-m", "onward", "worker", "--burst", "--database-url", store_url]
    result = subprocess.run(command, capture_output=True, text=True, env=cli_env, timeout=60)
    assert result.returncode == 0, result.stderr
    [worker_id] = re.findall(r"worker (\S+) started", result.stderr)
    assert f"INFO onward.steps: step 'process' completed [job {handle.id}] [worker {worker_id}]" in result.stderr
    assert f"INFO onward.worker: Flaky {handle.id} succeeded [worker {worker_id}]" in result.stderr

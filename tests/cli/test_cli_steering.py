"""onward retry / discard / enqueue / purge, and user errors, against a real store."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator

import pytest
from cli_jobs import Boom, Flaky, Greet, flaky_fail
from click.testing import CliRunner, Result

from onward import Store, Worker
from onward.cli import main
from onward.testing import drain

Invoke = Callable[..., Result]  # the onward_cli fixture (tests/cli/conftest.py)


def test_retry_reruns_a_failed_job_from_its_progress(onward_cli: Invoke) -> None:
    flaky_fail.set()
    try:
        handle = Flaky.perform_later()
        drain()
    finally:
        flaky_fail.clear()
    assert handle.refresh().state == "failed"
    result = onward_cli("retry", handle.id)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"Flaky {handle.id} is enqueued again."
    assert handle.refresh().state == "enqueued"
    drain()
    record = handle.refresh()
    assert record.state == "succeeded"
    assert record.result["processed"] == list(range(10))  # resumed at item 5, nothing repeated


def test_retry_refuses_a_job_that_did_not_fail(onward_cli: Invoke) -> None:
    handle = Greet.perform_later("a")
    result = onward_cli("retry", handle.id)
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: job {handle.id} is enqueued; only failed, discarded or cancelled jobs can be retried"
    )


def test_discard_an_enqueued_job(onward_cli: Invoke) -> None:
    handle = Greet.perform_later("a")
    result = onward_cli("discard", handle.id)
    assert result.exit_code == 0
    assert result.output.strip() == f"Greet {handle.id} is discarded."
    assert drain() == 0
    assert handle.refresh().state == "discarded"
    again = onward_cli("discard", handle.id)
    assert again.exit_code == 1
    assert "only enqueued or failed jobs can be discarded" in again.output


def test_enqueue_with_json_arguments(onward_cli: Invoke, store: Store) -> None:
    result = onward_cli(
        "enqueue", "cli_jobs:Greet", "--args", '["Ada"]', "--kwargs", '{"punctuation": "?"}', "--queue", "q", "--json"
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert (record["state"], record["queue"], record["args"], record["kwargs"]) == (
        "enqueued",
        "q",
        ["Ada"],
        {"punctuation": "?"},
    )
    drain()
    assert store.get(record["id"]).result == "hello Ada?"


def test_enqueue_with_a_delay(onward_cli: Invoke, store: Store) -> None:
    result = onward_cli("enqueue", "cli_jobs:Greet", "--args", '["x"]', "--delay", "1h", "--json")
    record = store.get(json.loads(result.output)["id"])
    assert 3590 < (record.scheduled_at - record.enqueued_at).total_seconds() <= 3600
    assert drain() == 0


@pytest.fixture
def worker(store: Store) -> Iterator[Worker]:
    worker = Worker(store=store, lease_timeout=30.0)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(30)


def test_enqueue_wait_reports_the_outcome(onward_cli: Invoke, worker: Worker) -> None:
    ok = onward_cli("enqueue", "cli_jobs:Greet", "--args", '["Bo"]', "--wait", "--timeout", "60")
    assert ok.exit_code == 0, ok.output
    assert "succeeded after" in ok.output
    assert '; result: "hello Bo!"' in ok.output
    failed = onward_cli("enqueue", "cli_jobs:Boom", "--args", '["nope"]', "--wait", "--timeout", "60")
    assert failed.exit_code == 1
    assert failed.output.splitlines()[-1].endswith(": builtins.RuntimeError: nope")


def test_purge_finished_jobs_older_than(onward_cli: Invoke) -> None:
    Greet.perform_all_later([(str(i),) for i in range(5)])
    failed = Boom.perform_later("kept")
    drain()
    recent = onward_cli("purge", "--older-than", "7d")
    assert recent.output.strip() == "Purged 0 succeeded jobs finished more than 7d ago."
    result = onward_cli("purge", "--state", "succeeded", "--older-than", "0s", "--batch-size", "2")
    assert result.exit_code == 0
    assert result.output.strip() == "Purged 5 succeeded jobs finished more than 0s ago."
    assert json.loads(onward_cli("jobs", "--json").output)[0]["id"] == failed.id
    failed_too = onward_cli("purge", "--state", "failed", "--older-than", "0s")
    assert failed_too.output.strip() == "Purged 1 failed job finished more than 0s ago."


# -- user errors: one line, exit 1, no traceback -----------------------------------------------

COMMANDS_WITH_ID = [["show"], ["retry"], ["discard"], ["watch"]]


@pytest.mark.parametrize("command", COMMANDS_WITH_ID, ids=lambda c: c[0])
def test_unknown_id_is_a_one_line_error(onward_cli: Invoke, command: list[str]) -> None:
    result = onward_cli(*command, "no-such-job")
    assert result.exit_code == 1
    assert result.output == "Error: no job with id 'no-such-job'\n"


ALL_COMMANDS = [
    ["jobs"],
    ["show", "x"],
    ["watch", "x"],
    ["stats"],
    ["retry", "x"],
    ["discard", "x"],
    ["enqueue", "cli_jobs:Greet"],
    ["purge", "--older-than", "1d"],
    ["demo"],
]


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize(
    "url",
    ["nosuch://db", "sqlite:///no/such/dir/x.db", "sqlite:relative.db", "postgresql://u:secret@127.0.0.1:1/db"],
    ids=["scheme", "directory", "form", "unreachable"],
)
def test_bad_database_url_is_a_one_line_error(command: list[str], url: str) -> None:
    result = CliRunner().invoke(main, [*command, "--database-url", url], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot open ")
    assert result.output.count("\n") == 1
    assert "Traceback" not in result.output
    assert "secret" not in result.output  # passwords are masked


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--args", "[1,"], "Error: --args is not valid JSON: Expecting value at character 3"),
        (["--args", '{"a": 1}'], "Error: --args must be a JSON array"),
        (["--kwargs", "[1]"], "Error: --kwargs must be a JSON object"),
        (["--kwargs", "{nope}"], "Error: --kwargs is not valid JSON"),
        (["--delay", "soon"], "Error: bad duration 'soon'"),
    ],
)
def test_bad_enqueue_input_is_a_one_line_error(onward_cli: Invoke, args: list[str], message: str) -> None:
    result = onward_cli("enqueue", "cli_jobs:Greet", *args)
    assert result.exit_code == 1
    assert result.output.startswith(message)
    assert result.output.count("\n") == 1


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("Greet", "Error: job class must be written module:ClassName, got 'Greet'"),
        ("cli_jobs:Nope", "Error: cannot import job class cli_jobs:Nope: AttributeError"),
        ("no_such_module:Job", "Error: cannot import job class no_such_module:Job: ModuleNotFoundError"),
    ],
)
def test_bad_job_class_is_a_one_line_error(onward_cli: Invoke, path: str, message: str) -> None:
    result = onward_cli("enqueue", path)
    assert result.exit_code == 1
    assert result.output.startswith(message)
    assert result.output.count("\n") == 1


def test_bad_purge_duration(onward_cli: Invoke) -> None:
    result = onward_cli("purge", "--older-than", "a week")
    assert result.exit_code == 1
    assert result.output == "Error: bad duration 'a week': write e.g. 7d, 12h, 30m, 90s or 1h30m\n"


def test_failed_continuations_are_marked_listed_counted_and_run_again(onward_cli: Invoke) -> None:
    from jobs_core import FlakyContinuations, continuations_broken

    continuations_broken.set()
    try:
        handle = FlakyContinuations.perform_later(1)
        drain()
    finally:
        continuations_broken.clear()
    listed = onward_cli("jobs", "--continuation-failed")
    assert listed.exit_code == 0, listed.output
    assert handle.id[:8] in listed.output
    assert "continuations failed" in listed.output
    stats = onward_cli("stats")
    assert "Succeeded with failed continuations: 1" in stats.output
    result = onward_cli("retry", "--continuations", handle.id)
    assert result.exit_code == 0, result.output
    assert f"The continuations of FlakyContinuations {handle.id} will run again" in result.output
    drain()
    assert len(handle.refresh().children) == 2
    assert "No jobs match." in onward_cli("jobs", "--continuation-failed").output
    refused = onward_cli("retry", "--continuations", handle.id)
    assert refused.exit_code == 1
    assert "has no failed continuations" in refused.output

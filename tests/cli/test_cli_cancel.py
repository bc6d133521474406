"""onward cancel and onward queues (pause, resume) against a real store."""

from __future__ import annotations

import json
from collections.abc import Callable

from cli_jobs import Greet
from click.testing import Result

from onward import Store, Worker

Invoke = Callable[..., Result]  # the onward_cli fixture (tests/cli/conftest.py)


def test_cancel_cancels_enqueued_jobs_and_says_what_it_did(onward_cli: Invoke) -> None:
    a, b = Greet.perform_later("a"), Greet.perform_later("b")
    result = onward_cli("cancel", a.id, b.id)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"Greet {a.id} is cancelled.", f"Greet {b.id} is cancelled."]
    assert (a.refresh().state, b.refresh().state) == ("cancelled", "cancelled")


def test_cancel_of_a_finished_job_changes_nothing_and_says_so(store: Store, onward_cli: Invoke) -> None:
    handle = Greet.perform_later("a")
    Worker(store=store).run(burst=True)
    result = onward_cli("cancel", handle.id)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"Greet {handle.id} is already succeeded; nothing changed."
    assert handle.refresh().state == "succeeded"


def test_cancel_of_an_unknown_id_is_a_one_line_error(onward_cli: Invoke) -> None:
    handle = Greet.perform_later("a")
    result = onward_cli("cancel", "no-such-job", handle.id)
    assert result.exit_code == 1
    assert "Error: no job with id 'no-such-job'" in result.output.splitlines()
    assert handle.refresh().state == "cancelled"  # the others are still cancelled


def test_retry_runs_a_cancelled_job_again(store: Store, onward_cli: Invoke) -> None:
    handle = Greet.perform_later("a")
    onward_cli("cancel", handle.id)
    result = onward_cli("retry", handle.id)
    assert result.exit_code == 0, result.output
    assert handle.refresh().cancel_requested_at is None
    Worker(store=store).run(burst=True)
    assert handle.refresh().state == "succeeded"


def test_queues_lists_counts_and_pause_resume_steer_claims(store: Store, onward_cli: Invoke) -> None:
    held = Greet.set(queue="mailers").perform_later("held")
    other = Greet.perform_later("other")
    result = onward_cli("queues", "pause", "mailers")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Queue 'mailers' is paused; its 1 enqueued job(s) wait until it is resumed."
    Worker(store=store).run(burst=True)  # does not wait for the paused queue
    assert (held.refresh().state, other.refresh().state) == ("enqueued", "succeeded")
    listed = json.loads(onward_cli("queues", "--json").output)
    by_name = {q["name"]: q for q in listed}
    assert by_name["mailers"]["paused"] is True
    assert by_name["mailers"]["counts"]["enqueued"] == 1
    assert by_name["default"]["paused"] is False
    assert by_name["default"]["counts"]["succeeded"] == 1
    table = onward_cli("queues").output
    assert "mailers" in table
    assert "paused" in table
    assert onward_cli("queues", "resume", "mailers").output.strip() == "Queue 'mailers' is resumed."
    Worker(store=store).run(burst=True)
    assert held.refresh().state == "succeeded"


def test_a_queue_can_be_paused_before_any_job_uses_it(store: Store, onward_cli: Invoke) -> None:
    assert onward_cli("queues", "pause", "later").exit_code == 0
    handle = Greet.set(queue="later").perform_later("x")  # enqueueing goes on
    Worker(store=store).run(burst=True)
    assert handle.refresh().state == "enqueued"
    bad = onward_cli("queues", "pause", "")
    assert bad.exit_code == 1
    assert "Error: a queue name must be a non-empty str" in bad.output

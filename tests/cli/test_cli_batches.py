"""``onward show BATCH_ID`` and ``onward retry`` of a failed member (API §11)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

import onward
from jobs_batches import Callback, FlakyMember, Member
from onward.testing import drain

Invoke = Callable[..., Result]


def test_show_prints_a_batch_s_counts_members_and_callbacks(onward_cli: Invoke) -> None:
    batch = onward.batch("album 7")
    with batch:
        Member.perform_all_later([(i,) for i in range(60)])
        Member.perform_later(60, fail=True)
        batch.on_finish(Callback, "notify")
    drain()
    result = onward_cli("show", batch.id)
    assert result.exit_code == 0, result.output
    out = result.output
    assert batch.id in out
    assert "album 7" in out
    assert "61 total: 0 pending, 60 succeeded, 1 failed" in out
    assert "100%" in out
    assert "page 1 of 2" in out
    assert f"onward show {batch.id} --page 2" in out
    page2 = onward_cli("show", batch.id, "--page", "2").output
    assert "page 2 of 2" in page2
    record = onward.get_batch(batch.id)
    assert record.job_ids[-1] in page2
    assert record.callback_ids[0] in out
    data = json.loads(onward_cli("show", batch.id, "--json").output)
    assert data["batch"]["state"] == "finished"
    assert data["batch"]["failed"] == 1
    assert len(data["members"]) == 50
    assert [c["args"] for c in data["callbacks"]] == [["notify"]]


def test_onward_retry_of_a_failed_member_makes_on_success_run_once(onward_cli: Invoke, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    batch = onward.batch()
    with batch:
        Member.perform_later(1)
        flaky = FlakyMember.perform_later(str(gate))
        batch.on_success(Callback, "success")
    drain()
    assert onward.get_batch(batch.id).state == "finished"
    assert onward.get_batch(batch.id).callback_ids == ()
    gate.touch()
    result = onward_cli("retry", flaky.id)
    assert result.exit_code == 0, result.output
    assert onward.get_batch(batch.id).state == "pending"
    drain()
    record = onward.get_batch(batch.id)
    assert (record.state, record.succeeded, record.failed) == ("succeeded", 2, 0)
    [callback] = record.callback_ids
    assert onward.get_job(callback).state == "succeeded"
    assert onward_cli("retry", flaky.id).exit_code != 0  # succeeded: nothing to retry
    assert len(onward.get_batch(batch.id).callback_ids) == 1


def test_show_of_an_unknown_id_still_says_no_job(onward_cli: Invoke) -> None:
    result = onward_cli("show", "no-such-thing")
    assert result.exit_code != 0
    assert "no job with id" in result.output

"""What operators see of limits: ``onward show`` and the dashboard say why a ready job
waits; ``onward stats`` and the dashboard's overview show the held jobs per key."""

from __future__ import annotations

import json
import warnings

from click.testing import CliRunner

from jobs_limits import Free, OnePerAccount, ThreePerMinute
from onward import admin
from onward.cli import main
from onward.dashboard import create_app
from onward.records import HeldCount
from onward.stores.base import Checkpoint, Store

with warnings.catch_warnings():
    # starlette.testclient suggests another HTTP client package; httpx works the same here.
    warnings.filterwarnings("ignore", message=".*starlette.testclient.*")
    from starlette.testclient import TestClient


def _cli(store: Store, *args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--database-url", store.url], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_job_held_by_its_concurrency_says_why_it_waits(store: Store) -> None:
    first, second, third = OnePerAccount.perform_all_later([(7,), (7,), (7,)])
    other = OnePerAccount.perform_later(8)
    claimed = store.claim("w", None, 30.0, 10)
    assert sorted(c.id for c in claimed) == sorted([first.id, other.id])  # one per key, the others held
    assert [h.refresh().state for h in (second, third)] == ["enqueued", "enqueued"]
    reason = "held by concurrency limit of account:7: 1/1 running"
    ops = admin.Admin(store)
    assert ops.job(second.id).waiting == reason
    assert ops.job(first.id).waiting is None  # running
    assert ops.stats().held == (HeldCount("account:7", 2, 1),)

    shown = _cli(store, "show", second.id)
    assert reason in shown
    assert "account:7" in shown
    assert json.loads(_cli(store, "show", second.id, "--json"))["waiting"] == reason
    stats = _cli(store, "stats")
    assert "HELD BY THE LIMITS OF KEY" in stats
    assert "account:7" in stats
    assert json.loads(_cli(store, "stats", "--json"))["held"] == {"account:7": {"held": 2, "running": 1}}

    with TestClient(create_app(store)) as client:
        page = client.get(f"/jobs/{second.id}")
        assert page.status_code == 200
        assert reason in page.text
        overview = client.get("/")
        assert "Held by the limits of key" in overview.text
        assert "account:7" in overview.text


def test_a_throttled_job_says_until_when(store: Store) -> None:
    handles = ThreePerMinute.perform_all_later([(i,) for i in range(5)])
    assert len(store.claim("w", None, 30.0, 10)) == 3
    waiting = admin.Admin(store).job(handles[4].id).waiting
    assert waiting is not None
    assert waiting.startswith(f"held by throttle of {handles[0].refresh().job_class}: 3/3 started in the last 60s")
    assert "throttled until 20" in waiting
    assert store.claim("w", None, 30.0, 10) == []  # nothing more in this window


def test_a_held_job_discarded_then_retried_by_an_operator_runs(store: Store) -> None:
    first, second = OnePerAccount.perform_all_later([(9,), (9,)])
    [claimed] = store.claim("w", None, 30.0, 10)  # the first runs; the second is held
    assert claimed.id == first.id
    ops = admin.Admin(store)
    ops.discard(second.id)
    store.fail(first.id, claimed.lease_token, Checkpoint(None, None, False), "x")  # its slot is free
    ops.retry(second.id)
    assert [c.id for c in store.claim("w", None, 30.0, 10)] == [second.id]


def test_a_claim_that_holds_many_jobs_still_claims_the_next_ready_one(store: Store) -> None:
    OnePerAccount.set(priority=-1).perform_all_later([(5,)] * 3000)
    later = Free.perform_all_later([(0,), (1,)])
    assert len(store.claim("w", None, 30.0, 1)) == 1  # one of account 5: the rest wait behind it
    assert [c.id for c in store.claim("w", None, 30.0, 1)] == [later[0].id]  # after holding 2,999 in one go
    assert admin.Admin(store).stats().held == (HeldCount("account:5", 2999, 1),)

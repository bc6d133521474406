"""Claims of a worker that keeps meeting jobs with limits (each store then applies limits from
the first statement of the claim): the limits still hold claim after claim, jobs without limits
are claimed among them in queue order, and held keys never hide the jobs behind them."""

from __future__ import annotations

import json
from collections import Counter

from jobs_limits import Capped, Free, OnePerAccount
from onward import admin
from onward.stores.base import Checkpoint, Claimed, Completion, Store

DONE = Checkpoint(None, None, False)


def _running_per_key(store: Store) -> Counter[str]:
    return Counter({held.key: held.running for held in admin.Admin(store).stats().held})


def _complete(store: Store, claimed: list[Claimed]) -> None:
    assert store.complete_many([Completion(c.id, c.lease_token, "null", DONE) for c in claimed]) == set()


def test_claim_after_claim_a_key_never_runs_more_than_its_concurrency(store: Store) -> None:
    jobs = Capped.perform_all_later([(i, f"a{i % 3}") for i in range(30)])  # ten per key, two at once
    free = Free.perform_all_later([(i,) for i in range(5)])
    key_of = {h.id: f"account:a{i % 3}" for i, h in enumerate(jobs)}
    claimed_ids: list[str] = []
    while True:
        claimed = store.claim("w", None, 30.0, 4)
        if not claimed:
            break
        claimed_ids += [c.id for c in claimed]
        running = Counter(key_of[job.id] for job in claimed if job.id in key_of)
        assert all(n <= 2 for n in running.values()), running
        if len(claimed_ids) < 35:  # a second claim while these run: their keys are full
            more = store.claim("w", None, 30.0, 4)
            both = Counter(key_of[job.id] for job in claimed + more if job.id in key_of)
            assert all(n <= 2 for n in both.values()), both
            claimed_ids += [c.id for c in more]
            claimed += more
        _complete(store, claimed)
    assert sorted(claimed_ids) == sorted(h.id for h in jobs + free)  # every job, once
    assert all(h.refresh().attempts == 1 for h in jobs)


def test_jobs_without_limits_behind_full_keys_are_claimed_by_the_same_claim(store: Store) -> None:
    # A hundred keys, each with a job running and two waiting, ahead of one job without limits:
    # holding them takes the claim through several pages of ready jobs.
    first = OnePerAccount.set(priority=-1).perform_all_later([(k,) for k in range(100)])
    taken = store.claim("w", None, 30.0, 100)
    assert sorted(c.id for c in taken) == sorted(h.id for h in first)
    OnePerAccount.set(priority=-1).perform_all_later([(k,) for k in range(100)] * 2)
    later = Free.perform_all_later([(0,)])
    assert [c.id for c in store.claim("w", None, 30.0, 1)] == [later[0].id]
    held = admin.Admin(store).stats().held
    assert len(held) == 100
    assert all(h.held == 2 and h.running == 1 for h in held), held[:3]
    _complete(store, taken[:1])  # one slot frees: the first job held for it is claimed next
    [next_one] = store.claim("w", None, 30.0, 5)
    assert next_one.job_class.endswith(":OnePerAccount")
    assert json.loads(next_one.args) == [0]
    assert _running_per_key(store)["account:0"] == 1


def test_a_worker_claiming_jobs_with_limits_then_without_takes_them_in_order(store: Store) -> None:
    keyed = Capped.perform_all_later([(i, f"k{i}") for i in range(8)])  # room for all of them
    free = Free.perform_all_later([(i,) for i in range(8)])
    order = [c.id for c in store.claim("w", None, 30.0, 4)] + [c.id for c in store.claim("w", None, 30.0, 4)]
    order += [c.id for c in store.claim("w", None, 30.0, 4)] + [c.id for c in store.claim("w", None, 30.0, 4)]
    assert order == [h.id for h in keyed + free]
    assert store.claim("w", None, 30.0, 4) == []

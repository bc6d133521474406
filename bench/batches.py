"""What batches cost: ``python -m bench.batches [--members 100000] [--jobs 10000] [--reps 2]``.

For each store:

- **enqueue**: ``--members`` no-op jobs enqueued in one batch (``with onward.batch(): ...
  perform_all_later(...)``), in jobs per second (target: at least 20,000), beside the same
  number enqueued with a plain ``perform_all_later``;
- **run**: one ``onward worker`` (2 threads) runs ``--jobs`` plain no-op jobs, then, on a
  fresh store, ``--jobs`` no-op members of one batch (each completion moves the batch's
  counters; the last one enqueues an ``on_success`` callback); the runs alternate ``--reps``
  times. Printed: both rates and the median paired ratio batch / plain (target: at least 0.80).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import onward
from bench.harness import WorkerProcess, fresh_store, postgres_unavailable, wait_until
from bench.jobs import Noop


def enqueue_rate(kind: str, members: int, in_batch: bool) -> float:
    with fresh_store(kind) as (store, _url):
        calls = [(i,) for i in range(members)]
        start = time.perf_counter()
        if in_batch:
            batch = onward.batch("bench")
            with batch:
                Noop.perform_all_later(calls)
                batch.on_success(Noop, -1)
        else:
            Noop.perform_all_later(calls)
        elapsed = time.perf_counter() - start
        if in_batch:
            assert store.get_batch(batch.id).total == members
        return members / elapsed


def run_rate(kind: str, jobs: int, in_batch: bool) -> float:
    with fresh_store(kind) as (store, url):
        calls = [(i,) for i in range(jobs)]
        if in_batch:
            batch = onward.batch("bench")
            with batch:
                Noop.perform_all_later(calls)
                batch.on_success(Noop, -1)
        else:
            Noop.perform_all_later(calls)
        target = jobs + 1 if in_batch else jobs  # the callback too
        with WorkerProcess(url, concurrency=2) as worker:
            rate = wait_until(store, target, worker)["per_s"]
        if in_batch:
            record = store.get_batch(batch.id)
            assert (record.state, len(record.callback_ids)) == ("succeeded", 1), record
        return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--stores", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    for kind in args.stores.split(","):
        if kind == "postgresql" and (why := postgres_unavailable()):
            print(f"{kind}: skipped, {why}")
            continue
        batch_enqueue = enqueue_rate(kind, args.members, in_batch=True)
        plain_enqueue = enqueue_rate(kind, args.members, in_batch=False)
        print(
            f"{kind}: enqueue {args.members:,} members in one batch: {batch_enqueue:,.0f} jobs/s"
            f" (plain perform_all_later: {plain_enqueue:,.0f} jobs/s; target >= 20,000)"
        )
        ratios = []
        for rep in range(args.reps):
            plain = run_rate(kind, args.jobs, in_batch=False)
            members = run_rate(kind, args.jobs, in_batch=True)
            ratios.append(members / plain)
            print(
                f"{kind}: run {args.jobs:,} no-op jobs, rep {rep + 1}: plain {plain:,.0f}/s,"
                f" batch members {members:,.0f}/s, ratio {members / plain:.2f}"
            )
        print(f"{kind}: median ratio batch members / plain: {statistics.median(ratios):.2f} (target >= 0.80)")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What a worker's journal costs per job (``onward.journal``): the four calls a job makes
(started, succeeded, ended, committed), next to the same loop without them.

Each figure is the median of ``--repeat`` runs of ``--n`` jobs (default 100,000), the two
sides interleaved. The journal writes to a file in a temporary directory, as a worker does.

Run: ``python -m bench.journal_overhead [--n N] [--repeat R] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

from onward.journal import Journal
from onward.stores.base import Checkpoint, Completion

CHECKPOINT = Checkpoint(None, None, False)


def with_journal(journal: Journal, ids: list[str], token: str) -> float:
    start = time.perf_counter()
    for job_id in ids:
        journal.started(job_id, token)
        journal.succeeded(Completion(job_id, token, "null", CHECKPOINT, None))
        journal.ended(job_id)
        journal.committed(job_id)
    return time.perf_counter() - start


def without(ids: list[str], token: str) -> float:
    start = time.perf_counter()
    for job_id in ids:
        Completion(job_id, token, "null", CHECKPOINT, None)  # the worker builds it anyway
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    ids = [f"01JB{n:022d}" for n in range(options.n)]
    token = "9f86d081884c7d65"
    journaled, bare = [], []
    with tempfile.TemporaryDirectory() as directory:
        journal = Journal(os.path.join(directory, f"{os.getpid()}-bench.journal"), "bench:1:abc")
        for _ in range(options.repeat):
            journaled.append(with_journal(journal, ids, token))
            bare.append(without(ids, token))
        journal.close()
    per_job_us = (statistics.median(journaled) - statistics.median(bare)) / options.n * 1e6
    result = {"jobs": options.n, "journal_us_per_job": round(per_job_us, 2)}
    for rate in (2_000, 5_000, 10_000):
        result[f"share_at_{rate}_jobs_per_s"] = round(per_job_us * rate / 1e6, 4)
    print(json.dumps(result) if options.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()

"""Checkpoint overhead: what ``Step.advance`` costs next to the same loop without a step.

Three figures, each the median of ``--repeat`` runs (the two sides of each comparison
interleaved) on one SQLite file (WAL,
``synchronous=NORMAL``, the embedded default):

1. A trivial loop body, ``--n`` advances (default 1,000,000) at the default
   ``checkpoint_interval`` (1 s): overhead per advance in microseconds.
2. The same loop when each item does ``--work-us`` (default 10) microseconds of work:
   stepped time over bare time.
3. ``checkpoint_interval = 0`` (every advance saved durably): advances per second, beside the
   raw rate of single-row ``UPDATE`` + ``COMMIT`` on the same file, measured in the same run.

Run: ``python -m bench.checkpoint_overhead [--n N] [--repeat R] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import onward
from onward import Job, Step

TARGET_OVERHEAD_US = 1.0
TARGET_WORK_RATIO = 1.10
TARGET_EVERY_CHANGE_SHARE = 0.5


def spin(us: float) -> None:
    """Busy work for ``us`` microseconds (stands for processing one item)."""
    end = time.perf_counter() + us * 1e-6
    while time.perf_counter() < end:
        pass


def bare_loop(n: int, work_us: float) -> float:
    """The loop of :class:`Loop` without a step; returns seconds."""
    t0 = time.perf_counter()
    if work_us:
        for _ in range(n):
            spin(work_us)
    else:
        for _ in range(n):
            pass
    return time.perf_counter() - t0


class Loop(Job):
    """One step advancing ``n`` times; returns the seconds spent in the loop."""

    def perform(self, n: int, work_us: float) -> float:
        self.n, self.work_us, self.elapsed = n, work_us, 0.0
        self.step("loop", self.loop)
        return self.elapsed

    def loop(self, step: Step) -> None:
        n, work_us = self.n, self.work_us
        t0 = time.perf_counter()
        if work_us:
            for i in range(step.cursor or 0, n):
                spin(work_us)
                step.advance(from_=i)
        else:
            for i in range(step.cursor or 0, n):
                step.advance(from_=i)
        self.elapsed = time.perf_counter() - t0


class LoopEveryChange(Loop):
    checkpoint_interval = 0


def raw_update_rate(path: str, n: int) -> float:
    """Single-row ``UPDATE`` + ``COMMIT`` per second on ``path`` (autocommit, as the store)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS bench_raw (id INTEGER PRIMARY KEY, pos INTEGER NOT NULL)")
    conn.execute("INSERT OR REPLACE INTO bench_raw VALUES (1, 0)")
    t0 = time.perf_counter()
    for i in range(n):
        conn.execute("UPDATE bench_raw SET pos = ? WHERE id = 1", (i,))
    secs = time.perf_counter() - t0
    conn.close()
    return n / secs


def paired_medians(repeat: int, first: Callable[[], float], second: Callable[[], float]) -> tuple[float, float]:
    """Medians of ``repeat`` runs of each, interleaved so that load drifting on a shared
    machine affects both sides of a comparison alike."""
    a, b = [], []
    for _ in range(repeat):
        a.append(first())
        b.append(second())
    return statistics.median(a), statistics.median(b)


def measure(n: int, n_work: int, n_durable: int, work_us: float, repeat: int, path: str) -> dict[str, Any]:
    onward.connect(f"sqlite:///{path}")
    bare, stepped = paired_medians(repeat, lambda: bare_loop(n, 0), lambda: float(Loop.perform_now(n, 0)))
    bare_work, stepped_work = paired_medians(
        repeat, lambda: bare_loop(n_work, work_us), lambda: float(Loop.perform_now(n_work, work_us))
    )
    durable_rate, raw_rate = paired_medians(
        repeat,
        lambda: n_durable / float(LoopEveryChange.perform_now(n_durable, 0)),
        lambda: raw_update_rate(path, n_durable),
    )
    overhead_us = (stepped - bare) / n * 1e6
    return {
        "n": n,
        "repeat": repeat,
        "bare_loop_s": round(bare, 4),
        "stepped_loop_s": round(stepped, 4),
        "overhead_us_per_advance": round(overhead_us, 3),
        "work_us_per_item": work_us,
        "n_work": n_work,
        "bare_work_s": round(bare_work, 4),
        "stepped_work_s": round(stepped_work, 4),
        "work_ratio": round(stepped_work / bare_work, 4),
        "n_every_change": n_durable,
        "every_change_advances_per_s": round(durable_rate),
        "raw_update_commits_per_s": round(raw_rate),
        "every_change_share_of_raw": round(durable_rate / raw_rate, 3),
    }


def report(r: dict[str, Any]) -> str:
    def verdict(ok: bool) -> str:
        return "meets target" if ok else "MISSES target"

    return "\n".join(
        [
            f"checkpoint overhead (median of {r['repeat']} runs, SQLite WAL synchronous=NORMAL)",
            f"  trivial body, {r['n']:,} advances, default interval (1 s):",
            f"    bare loop {r['bare_loop_s']:.3f} s, stepped {r['stepped_loop_s']:.3f} s"
            f" -> {r['overhead_us_per_advance']:.3f} us per advance"
            f" (target <= {TARGET_OVERHEAD_US} us: {verdict(r['overhead_us_per_advance'] <= TARGET_OVERHEAD_US)})",
            f"  {r['work_us_per_item']:g} us of work per item, {r['n_work']:,} advances, default interval:",
            f"    bare {r['bare_work_s']:.3f} s, stepped {r['stepped_work_s']:.3f} s"
            f" -> {r['work_ratio']:.3f}x"
            f" (target <= {TARGET_WORK_RATIO}x: {verdict(r['work_ratio'] <= TARGET_WORK_RATIO)})",
            f"  checkpoint_interval = 0, {r['n_every_change']:,} advances, each saved durably:",
            f"    {r['every_change_advances_per_s']:,} advances/s vs raw UPDATE+COMMIT"
            f" {r['raw_update_commits_per_s']:,}/s -> {r['every_change_share_of_raw']:.2f} of raw"
            f" (target >= {TARGET_EVERY_CHANGE_SHARE}:"
            f" {verdict(r['every_change_share_of_raw'] >= TARGET_EVERY_CHANGE_SHARE)})",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1_000_000, help="advances with a trivial body")
    parser.add_argument("--n-work", type=int, default=100_000, help="advances with work per item")
    parser.add_argument("--n-every-change", type=int, default=20_000, help="advances at interval 0")
    parser.add_argument("--work-us", type=float, default=10.0, help="microseconds of work per item")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure; the median is reported")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="onward-bench-") as tmp:
        path = os.path.join(tmp, "bench.sqlite3")
        result = measure(args.n, args.n_work, args.n_every_change, args.work_us, args.repeat, path)
    print(json.dumps(result) if args.json else report(result), flush=True)


if __name__ == "__main__":
    main()

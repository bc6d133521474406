"""Iteration overhead: ``step.each`` beside the loops it replaces, in the same run.

Two comparisons, each the median of ``--repeat`` runs (the two sides interleaved), timed
inside one step of a job run with ``perform_now`` on a temporary SQLite store (WAL,
``synchronous=NORMAL``, default ``checkpoint_interval`` of 1 s):

1. A list of ``--n`` items (default 1,000,000) with a no-op body:
   ``for item in step.each(items): pass`` beside ``for item in items: step.advance()``.
2. ``--rows`` SQLite rows (default 1,000,000; ``id INTEGER PRIMARY KEY, payload TEXT``) read
   in pages of 1,000 with a no-op body: ``step.each(iterate.rows(conn, "SELECT id, payload
   FROM items", key="id"))`` beside a hand-written keyset loop (``WHERE id >= ? ORDER BY id
   LIMIT 1000`` and ``step.advance(from_=row_id)`` per row, the loop of the docs).

Each ratio is the plain loop's time over ``step.each``'s: 1.0 means as fast, higher is faster.
Targets: at least 0.90 for the list and 0.80 for the rows. Each loop is timed by the wall
clock and by the CPU time of the thread running it; on a machine shared with other work the
CPU-time ratio is the steadier of the two.

Run: ``python -m bench.iterate [--n N] [--rows N] [--repeat R] [--json]``.
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
from onward import Job, Step, iterate

TARGET_LIST = 0.90
TARGET_ROWS = 0.80
PAGE = 1000


class Timer:
    """Wall-clock and thread CPU seconds from creation to :meth:`stop`."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.thread_time()

    def stop(self) -> list[float]:
        return [time.perf_counter() - self.wall, time.thread_time() - self.cpu]


class AdvanceLoop(Job):
    """``for item in items: step.advance()``; returns [wall, CPU] seconds spent in the loop."""

    def perform(self, n: int) -> list[float]:
        self.items, self.elapsed = list(range(n)), [0.0, 0.0]
        self.step("loop", self.loop)
        return self.elapsed

    def loop(self, step: Step) -> None:
        items = self.items
        timer = Timer()
        for _item in items:
            step.advance()
        self.elapsed = timer.stop()


class EachLoop(AdvanceLoop):
    """``for item in step.each(items): pass``."""

    def loop(self, step: Step) -> None:
        items = self.items
        timer = Timer()
        for _item in step.each(items):
            pass
        self.elapsed = timer.stop()


class KeysetLoop(Job):
    """A hand-written keyset loop over the rows; returns [wall, CPU] seconds spent in it."""

    def perform(self, path: str) -> list[float]:
        self.path, self.elapsed = path, [0.0, 0.0]
        self.step("loop", self.loop)
        return self.elapsed

    def loop(self, step: Step) -> None:
        conn = sqlite3.connect(self.path)
        timer = Timer()
        next_id = step.cursor or 0
        while True:
            rows = conn.execute(
                "SELECT id, payload FROM items WHERE id >= ? ORDER BY id LIMIT ?", (next_id, PAGE)
            ).fetchall()
            for row in rows:
                step.advance(from_=row[0])
            if len(rows) < PAGE:
                break
            next_id = rows[-1][0] + 1
        self.elapsed = timer.stop()
        conn.close()


class EachRows(KeysetLoop):
    """``step.each(iterate.rows(...))`` over the same rows."""

    def loop(self, step: Step) -> None:
        conn = sqlite3.connect(self.path)
        timer = Timer()
        for _row in step.each(iterate.rows(conn, "SELECT id, payload FROM items", key="id", batch_size=PAGE)):
            pass
        self.elapsed = timer.stop()
        conn.close()


def make_rows(path: str, n: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
    conn.executemany("INSERT INTO items VALUES (?, ?)", ((i, f"payload of row {i}") for i in range(1, n + 1)))
    conn.commit()
    conn.close()


def paired_medians(
    repeat: int, first: Callable[[], list[float]], second: Callable[[], list[float]]
) -> dict[str, float]:
    """Medians of ``repeat`` runs of each side (wall and CPU seconds), the runs interleaved so
    that load drifting on a shared machine affects both sides alike."""
    a, b = [], []
    for _ in range(repeat):
        a.append(first())
        b.append(second())
    out = {}
    for i, clock in enumerate(("wall", "cpu")):
        plain, each = statistics.median(x[i] for x in a), statistics.median(x[i] for x in b)
        out.update({f"plain_{clock}_s": round(plain, 4), f"each_{clock}_s": round(each, 4)})
        out[f"{clock}_ratio"] = round(plain / each, 3)
    return out


def measure(n: int, rows: int, repeat: int, tmp: str) -> dict[str, Any]:
    onward.connect(f"sqlite:///{os.path.join(tmp, 'jobs.sqlite3')}")
    in_list = paired_medians(repeat, lambda: AdvanceLoop.perform_now(n), lambda: EachLoop.perform_now(n))
    data = os.path.join(tmp, "rows.sqlite3")
    make_rows(data, rows)
    in_rows = paired_medians(repeat, lambda: KeysetLoop.perform_now(data), lambda: EachRows.perform_now(data))
    return {"n": n, "rows": rows, "repeat": repeat, "list": in_list, "sqlite_rows": in_rows}


def report(r: dict[str, Any]) -> str:
    def verdict(ok: bool) -> str:
        return "meets target" if ok else "MISSES target"

    def lines(figures: dict[str, float], plain: str, each: str, target: float) -> list[str]:
        return [
            f"    {clock:<4}: {plain} {figures[f'plain_{clock}_s']:.3f} s, {each} {figures[f'each_{clock}_s']:.3f} s"
            f" -> {figures[f'{clock}_ratio']:.2f} (target >= {target}: {verdict(figures[f'{clock}_ratio'] >= target)})"
            for clock in ("wall", "cpu")
        ]

    return "\n".join(
        [
            f"iteration overhead (median of {r['repeat']} runs, SQLite store, default checkpoint_interval)",
            f"  list of {r['n']:,} items, no-op body:",
            *lines(r["list"], "for + step.advance()", "step.each", TARGET_LIST),
            f"  {r['rows']:,} SQLite rows in pages of {PAGE:,}, no-op body:",
            *lines(r["sqlite_rows"], "hand-written keyset loop", "step.each(iterate.rows)", TARGET_ROWS),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1_000_000, help="list items")
    parser.add_argument("--rows", type=int, default=1_000_000, help="SQLite rows")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure; the median is reported")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="onward-bench-") as tmp:
        result = measure(args.n, args.rows, args.repeat, tmp)
    print(json.dumps(result) if args.json else report(result), flush=True)


if __name__ == "__main__":
    main()

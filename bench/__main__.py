"""``python -m bench`` (``./dev bench``): Onward's benchmark suite on SQLite and PostgreSQL.

Prints one JSON document (``--json-out`` also writes it to a file) and a markdown table.
``--quick`` uses smaller sizes (a 100,000-job backlog instead of 1,000,000); ``--store``
picks one store. PostgreSQL is skipped, with the reason, when its store or server is not
available. Every figure uses durable commits (see ``bench/suite.py``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import Any

from bench import schedules, suite
from bench.harness import postgres_unavailable


def plan(quick: bool) -> dict[str, Any]:
    if quick:
        return {"one": 2_000, "bulk": 20_000, "process": 10_000, "latency": 30, "parents": 300,
                "backlog": (1_000, 100_000), "measure": 10_000, "memory": 30_000, "schedule_reps": 1}  # fmt: skip
    return {"one": 5_000, "bulk": 20_000, "process": 20_000, "latency": 50, "parents": 1_000,
            "backlog": (1_000, 1_000_000), "measure": 20_000, "memory": 100_000, "schedule_reps": 3}  # fmt: skip


def run_store(kind: str, p: dict[str, Any], only: set[str] | None) -> dict[str, Any]:
    steps: dict[str, Callable[[], Any]] = {
        "enqueue_one": lambda: suite.enqueue_one_by_one(kind, p["one"]),
        "enqueue_bulk": lambda: suite.enqueue_bulk(kind, p["bulk"]),
        "throughput": lambda: suite.throughput(kind, p["process"]),
        "throughput_2_processes": lambda: suite.throughput(kind, p["process"], concurrency=1, processes=2),
        "latency": lambda: suite.latency(kind, p["latency"]),
        "continuations": lambda: suite.continuation_cost(kind, p["parents"]),
        "backlog": lambda: suite.backlog(kind, p["backlog"], p["measure"], p["memory"]),
        "idle_rss": lambda: suite.idle_rss(kind),
        "schedules": lambda: schedules.measure(kind, p["schedule_reps"], p["process"] * 10, 3.0, 8.0),
    }
    out: dict[str, Any] = {}
    for name, step in steps.items():
        if only and name not in only:
            continue
        t = time.perf_counter()
        try:
            out[name] = step()
        except Exception as exc:  # report and go on: one broken figure should not hide the rest
            out[name] = {"error": f"{type(exc).__name__}: {exc}"[:800]}
        print(f"[bench] {kind} {name}: {json.dumps(out[name])} ({time.perf_counter() - t:.0f} s)", file=sys.stderr)
    return out


def row(name: str, value: Any, fmt: Callable[[Any], str]) -> str:
    return f"| {name} | " + " | ".join(fmt(v) if v is not None else "-" for v in value) + " |"


def table(results: dict[str, Any]) -> str:
    kinds = [k for k in ("sqlite", "postgresql") if isinstance(results["stores"].get(k), dict)]

    def get(kind: str, *path: str) -> Any:
        value: Any = results["stores"][kind]
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value

    def rate(v: Any) -> str:
        return f"{v:,.0f}/s"

    def ms(v: Any) -> str:
        return f"{v:.2f} ms"

    def mib(v: Any) -> str:
        return f"{v / 1024:.1f} MiB"

    def pct(v: Any) -> str:
        return f"{v:+.1%}"

    def ratio(v: Any) -> str:
        return f"{v:.2f}"

    large = str(results["plan"]["backlog"][1])
    lines = ["| measure | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for label, path, fmt in (
        ("enqueue, one `perform_later` per job", ("enqueue_one", "per_s"), rate),
        ("  raw single-row INSERT + COMMIT, same run", ("enqueue_one", "raw_per_s"), rate),
        ("  `perform_later` / raw (target >= 0.80)", ("enqueue_one", "ratio"), ratio),
        ("  the jobs table's INSERT sent bare, same run", ("enqueue_one", "jobs_statement_per_s"), rate),
        ("enqueue, `perform_all_later` (one transaction)", ("enqueue_bulk", "per_s"), rate),
        ("processing, 1 process x 2 threads", ("throughput", "per_s"), rate),
        ("processing, `--processes 2` x 1 thread", ("throughput_2_processes", "per_s"), rate),
        ("enqueue-to-start latency p50", ("latency", "p50_ms"), ms),
        ("enqueue-to-start latency p90", ("latency", "p90_ms"), ms),
        ("processing, plain jobs", ("continuations", "plain_per_s"), rate),
        ("processing, parents with 10 continuations (all 11 jobs counted)", ("continuations", "with_children_per_s"),
         rate),
        ("processing with 1,000 queued", ("backlog", "1000", "per_s"), rate),
        (f"processing with {int(large):,} queued", ("backlog", large, "per_s"), rate),
        (f"{int(large):,} queued / 1,000 queued", ("backlog", "ratio"), ratio),
        ("worker RSS change between the two memory samples", ("backlog", large, "memory", "change"), pct),
        ("idle worker RSS (concurrency 2)", ("idle_rss", "rss_kib"), mib),
        ("processing with 1,000 `every=1` schedules declared", ("schedules", "with_per_s"), rate),
        ("  / without (target >= 0.90)", ("schedules", "ratio"), ratio),
        ("  ticks enqueued more than 1 s late (target 0)", ("schedules", "late_over_1s"), str),
    ):  # fmt: skip
        lines.append(row(label, [get(k, *path) for k in kinds], fmt))
    ck = results.get("checkpoint_overhead")
    if isinstance(ck, dict) and "error" not in ck:
        lines.append("")
        lines.append("Checkpoint overhead (SQLite): " + json.dumps(ck))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql", "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (100,000-job backlog)")
    parser.add_argument("--only", default="", help="comma-separated figures (e.g. throughput,latency)")
    parser.add_argument("--json-out", default=None, help="also write the JSON document here")
    args = parser.parse_args(argv)
    p = plan(args.quick)
    only = {s for s in args.only.split(",") if s} or None
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "durability": "SQLite WAL synchronous=NORMAL; PostgreSQL synchronous_commit as configured (default on)",
        "plan": p,
        "stores": {},
    }
    kinds = ["sqlite", "postgresql"] if args.store == "all" else [args.store]
    for kind in kinds:
        if kind == "postgresql":
            why = postgres_unavailable()
            if why:
                print(f"[bench] skipping PostgreSQL: {why}", file=sys.stderr)
                results["stores"][kind] = f"skipped: {why}"
                continue
        results["stores"][kind] = run_store(kind, p, only)
    if only is None or "checkpoint_overhead" in only:
        results["checkpoint_overhead"] = suite.checkpoint_overhead(args.quick)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(text + "\n")
    print()
    print(table(results))


if __name__ == "__main__":
    main()

"""What 1,000 ``every=1`` schedules cost a worker: ``python -m bench.schedules`` (also run by
``python -m bench``, figure ``schedules``).

For each store, ``--reps`` times, the runs interleaved (same machine, same load):

- **without**: one ``onward worker`` (2 threads, serving the queue ``bench``) runs a backlog of
  no-op jobs;
- **with**: the same worker with 1,000 schedules declared (``every=1``, each enqueuing a no-op
  job on ``bench-ticks``, a queue this worker does not serve, so that only the scheduler's own
  work competes with the backlog): its scheduler records 1,000 ticks and their jobs per second;
- **with, ticks served**: the same, serving both queues, so the worker also runs the 1,000 tick
  jobs per second.

Printed: the backlog's no-op jobs per second (over ``--window`` seconds, after ``--warmup``),
the median paired ratio with / without (target: at least 0.90), all no-op jobs per second
when the ticks are served, how late each tick's job was enqueued (``enqueued_at -
scheduled_for``, ``enqueued_at`` being when the scheduler's transaction began; target: none
later than 1 s), how late the ticks were committed (visible to workers: the bench polls the
schedules' progress every 0.1 s during the window and counts the whole seconds whose ticks
were committed more than 1 s after them), and CPU time from ``/proc``: the worker's main
thread (where the scheduler runs) per second, and the whole worker's per backlog job. On a
machine shared with other work, the CPU figures vary far less than the rates.

``--pages N`` counts the pages the N-th scheduler pass over the same 1,000 schedules writes to
a SQLite file's write-ahead log, by table or index (a figure the load does not move either).

``--instructions`` counts instead, under valgrind, the instructions per tick of a process
that runs scheduler passes over the same 1,000 schedules (the database server's not counted):
a figure the machine's load does not move.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.harness import WorkerProcess, fresh_store, postgres_unavailable, sql
from bench.suite import analyze, fill

SCHEDULES = 1000
FINISHED = "state IN ('succeeded', 'failed', 'discarded')"


def done(store: Any, queue: str | None) -> int:
    where = f" AND queue = '{queue}'" if queue else ""  # a constant of this module
    return int(sql(store, f"SELECT count(*) FROM onward_jobs WHERE state = 'succeeded' AND {FINISHED}{where}")[0])


def lateness(store: Any) -> list[float]:
    """Seconds between each tick and the enqueueing of its job."""
    if hasattr(store, "_exec"):  # SQLite: epoch seconds
        rows = store._exec("SELECT enqueued_at - scheduled_for FROM onward_jobs WHERE schedule_key IS NOT NULL")
        return [float(r[0]) for r in rows.fetchall()]
    import psycopg

    with psycopg.connect(store.url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM enqueued_at - scheduled_for) FROM onward_jobs WHERE schedule_key IS NOT NULL"
        ).fetchall()
    return [float(r[0]) for r in rows]


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU time (user + system) of process ``pid``'s main thread (where the scheduler runs)
    and of all its threads, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    main = total = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used = (int(fields[11]) + int(fields[12])) / tick
        total += used
        if int(tid) == pid:
            main = used
    return main, total


def ticked_through(store: Any) -> float:
    """The tick up to which every schedule's ticks are committed (epoch seconds)."""
    if hasattr(store, "_exec"):
        return float(sql(store, "SELECT min(ticked_through) FROM onward_schedules")[0] or 0.0)
    return float(sql(store, "SELECT extract(epoch FROM min(ticked_through)) FROM onward_schedules")[0] or 0.0)


def watch_visibility(store: Any, window: float, every: float = 0.1) -> dict[str, float]:
    """Poll, every ``every`` seconds for ``window`` seconds, the tick up to which all the
    schedules' ticks are committed, so visible to workers (``enqueued_at`` is when the
    scheduler's transaction began): each whole-second tick that became visible between two
    polls is taken as visible at the second poll (an upper bound, within ``every``)."""
    end = time.monotonic() + window
    seen = ticked_through(store)
    late = later_than_1s = ticks = 0
    while time.monotonic() < end:
        time.sleep(every)
        now, through = time.time(), ticked_through(store)
        for tick in range(int(seen) + 1, int(through) + 1):
            ticks += 1
            late = max(late, now - tick)
            later_than_1s += now - tick > 1.0
        seen = max(seen, through)
    return {"visible_ticks": ticks, "visible_late_over_1s": later_than_1s, "visible_lateness_max_ms": 1000 * late}


def one_run(kind: str, schedules: int, serve_ticks: bool, backlog: int, warmup: float, window: float) -> dict[str, Any]:
    with fresh_store(kind) as (store, url):
        fill(backlog)
        analyze(store)
        queues = ("--queues", "bench,bench-ticks") if serve_ticks else ("--queues", "bench")
        env = {"ONWARD_BENCH_SCHEDULES": str(schedules)}
        counted = None if serve_ticks else "bench"
        with WorkerProcess(url, 2, extra=("--import", "bench.schedule_app", *queues), env=env) as worker:
            deadline = time.monotonic() + 300
            while done(store, counted) == 0:
                if time.monotonic() > deadline or worker.proc.poll() is not None:
                    raise RuntimeError(f"the worker did not start:\n{worker.output()}")
                time.sleep(0.02)
            time.sleep(warmup)
            n1, t1, (main1, all1) = done(store, counted), time.perf_counter(), cpu_seconds(worker.proc.pid)
            visible = None
            if schedules:
                visible = watch_visibility(store, window)
            else:
                time.sleep(window)
            n2, t2, (main2, all2) = done(store, counted), time.perf_counter(), cpu_seconds(worker.proc.pid)
            if done(store, "bench") >= backlog:
                raise RuntimeError(f"the backlog of {backlog} ran out during the window: give a larger --backlog")
            worker.stop()
        late = sorted(lateness(store)) if schedules else []
    out: dict[str, Any] = {
        "per_s": (n2 - n1) / (t2 - t1),
        "main_thread_cpu_ms_per_s": 1000 * (main2 - main1) / (t2 - t1),
        "cpu_us_per_job": 1e6 * (all2 - all1) / max(1, n2 - n1),
    }
    if visible is not None:
        out.update(visible)
    if late:
        out["ticks"] = len(late)
        out["late_over_1s"] = sum(1 for v in late if v > 1.0)
        out["lateness_p50_ms"] = 1000 * late[len(late) // 2]
        out["lateness_p99_ms"] = 1000 * late[int(0.99 * (len(late) - 1))]
        out["lateness_max_ms"] = 1000 * late[-1]
    return out


def retried(kind: str, schedules: int, serve_ticks: bool, backlog: int, warmup: float, window: float) -> dict[str, Any]:
    """:func:`one_run`, run again once if it failed (a database server restarted under it)."""
    try:
        return one_run(kind, schedules, serve_ticks, backlog, warmup, window)
    except Exception as exc:
        print(f"[bench] {kind} schedules: a run failed, once more: {exc}", file=sys.stderr)
        time.sleep(5)
        return one_run(kind, schedules, serve_ticks, backlog, warmup, window)


def measure(kind: str, reps: int, backlog: int, warmup: float, window: float) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"without": [], "with": [], "with_ticks_served": []}
    for _ in range(reps):
        runs["without"].append(retried(kind, 0, False, backlog, warmup, window))
        runs["with"].append(retried(kind, SCHEDULES, False, backlog, warmup, window))
        runs["with_ticks_served"].append(retried(kind, SCHEDULES, True, backlog, warmup, window))
        print(f"[bench] {kind} schedules: {json.dumps({k: v[-1] for k, v in runs.items()})}", file=sys.stderr)
    ratios = [w["per_s"] / b["per_s"] for w, b in zip(runs["with"], runs["without"], strict=True)]
    late = [r for name in ("with", "with_ticks_served") for r in runs[name]]
    return {
        "schedules": SCHEDULES,
        "reps": reps,
        "without_per_s": statistics.median(r["per_s"] for r in runs["without"]),
        "with_per_s": statistics.median(r["per_s"] for r in runs["with"]),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "with_ticks_served_per_s": statistics.median(r["per_s"] for r in runs["with_ticks_served"]),
        "main_thread_cpu_ms_per_s_without": statistics.median(r["main_thread_cpu_ms_per_s"] for r in runs["without"]),
        "main_thread_cpu_ms_per_s_with": statistics.median(r["main_thread_cpu_ms_per_s"] for r in runs["with"]),
        "cpu_us_per_job_without": statistics.median(r["cpu_us_per_job"] for r in runs["without"]),
        "cpu_us_per_job_with": statistics.median(r["cpu_us_per_job"] for r in runs["with"]),
        "ticks": sum(r["ticks"] for r in late),
        "late_over_1s": sum(r["late_over_1s"] for r in late),
        "lateness_p50_ms": statistics.median(r["lateness_p50_ms"] for r in late),
        "lateness_p99_ms": max(r["lateness_p99_ms"] for r in late),
        "lateness_max_ms": max(r["lateness_max_ms"] for r in late),
        # whole-second ticks of every schedule, committed more than 1 s after the tick
        "visible_late_over_1s": sum(r["visible_late_over_1s"] for r in late),
        "visible_lateness_max_ms": max(r["visible_lateness_max_ms"] for r in late),
        "runs": runs,
    }


# One process: the schedules of bench.schedule_app, then ``passes`` scheduler passes at
# successive whole seconds (``at``: no waiting), each enqueuing 1,000 ticks.
_PASSES = """
import math, sys
import onward, bench.schedule_app
from onward.duties.scheduler import Scheduler
passes, url = int(sys.argv[1]), sys.argv[2]
store = onward.connect(url)
scheduler = Scheduler(None, at=1_800_000_000.0)
scheduler.tick(store)
scheduler._declare_at = math.inf  # declared once: the passes below only tick
for k in range(1, passes + 1):
    scheduler._at = 1_800_000_000.0 + k
    assert len(scheduler.tick(store)) == SCHEDULES
store.close()
"""


def instructions(kind: str) -> float:
    """Instructions per tick of the scheduler's process (valgrind; the database server's not
    counted): the difference between 3 passes and 1, over 2,000 ticks."""
    counts = []
    for passes in (1, 3):
        with fresh_store(kind) as (_store, url):
            env = {**os.environ, "ONWARD_BENCH_SCHEDULES": str(SCHEDULES)}
            argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
            script = _PASSES.replace("SCHEDULES", str(SCHEDULES))
            done = subprocess.run([*argv, "-c", script, str(passes), url], env=env, capture_output=True, text=True)
            found = re.search(r"Collected : (\d+)", done.stderr)
            if done.returncode != 0 or found is None:
                raise RuntimeError(f"valgrind failed:\n{done.stderr[-2000:]}")
            counts.append(int(found.group(1)))
    return (counts[1] - counts[0]) / (2 * SCHEDULES)


# One process on a SQLite file: ``passes`` scheduler passes as above, the write-ahead log folded
# into the file before the last one, whose pages are then read from the log's frame headers.
_PAGES = """
import collections, json, math, sqlite3, struct, sys
import onward, bench.schedule_app
from onward.duties.scheduler import Scheduler
passes, url = int(sys.argv[1]), sys.argv[2]
store = onward.connect(url)
conn = store._conn()
conn.execute("PRAGMA wal_autocheckpoint = 0")
scheduler = Scheduler(None, at=1_800_000_000.0)
scheduler.tick(store)
scheduler._declare_at = math.inf
for k in range(1, passes + 1):
    scheduler._at = 1_800_000_000.0 + k
    if k == passes:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert len(scheduler.tick(store)) == SCHEDULES
names = {page: name for name, page in sqlite3.connect(store.path).execute("SELECT name, pageno FROM dbstat")}
log = open(store.path + "-wal", "rb").read()
size = struct.unpack(">I", log[8:12])[0]
frames = [struct.unpack(">I", log[at : at + 4])[0] for at in range(32, len(log) - 23, 24 + size)]
print(json.dumps(collections.Counter(names.get(page, "?") for page in frames).most_common()))
store.close()
"""


def pages(passes: int) -> list[tuple[str, int]]:
    """The pages the ``passes``-th scheduler pass over the 1,000 schedules writes to a SQLite
    file's write-ahead log, by table or index (one frame per page written)."""
    with fresh_store("sqlite") as (_store, url):
        env = {**os.environ, "ONWARD_BENCH_SCHEDULES": str(SCHEDULES)}
        script = _PAGES.replace("SCHEDULES", str(SCHEDULES))
        done = subprocess.run([sys.executable, "-c", script, str(passes), url], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the passes failed:\n{done.stderr[-2000:]}")
        return [(name, count) for name, count in json.loads(done.stdout.strip().splitlines()[-1])]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.schedules", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql", "all"], default="all")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--backlog", type=int, default=200_000, help="no-op jobs queued before each run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after the first job before measuring")
    parser.add_argument("--window", type=float, default=8.0, help="seconds measured")
    parser.add_argument(
        "--instructions", action="store_true", help="only count instructions per tick (valgrind), load-independent"
    )
    parser.add_argument(
        "--pages",
        type=int,
        metavar="PASSES",
        help="only count the pages the PASSES-th pass writes to a SQLite file's write-ahead log, by table",
    )
    args = parser.parse_args(argv)
    if args.pages:
        written = pages(args.pages)
        by_table = ", ".join(f"{name} {n}" for name, n in written)
        print(f"pass {args.pages}: {sum(n for _, n in written):,} pages written ({by_table})")
        return
    if args.instructions:
        for kind in ["sqlite", "postgresql"] if args.store == "all" else [args.store]:
            print(f"{kind}: {instructions(kind):,.0f} instructions per tick")
        return
    results: dict[str, Any] = {}
    for kind in ["sqlite", "postgresql"] if args.store == "all" else [args.store]:
        why = postgres_unavailable() if kind == "postgresql" else None
        results[kind] = f"skipped: {why}" if why else measure(kind, args.reps, args.backlog, args.warmup, args.window)
    print(json.dumps(results, indent=2))
    print()
    print("| store | without | with 1,000 schedules | ratio (target >= 0.90) | ticks served: all jobs/s"
          " | ticks | late > 1 s (target 0) | lateness p50 / p99 / max | committed > 1 s late: seconds of ticks, max"
          " | main thread CPU without / with | worker CPU per job without / with |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for kind, r in results.items():
        if isinstance(r, dict):
            print(
                f"| {kind} | {r['without_per_s']:,.0f}/s | {r['with_per_s']:,.0f}/s | {r['ratio']:.2f}"
                f" | {r['with_ticks_served_per_s']:,.0f}/s | {r['ticks']:,} | {r['late_over_1s']}"
                f" | {r['lateness_p50_ms']:.0f} / {r['lateness_p99_ms']:.0f} / {r['lateness_max_ms']:.0f} ms"
                f" | {r['visible_late_over_1s']}, {r['visible_lateness_max_ms']:.0f} ms"
                f" | {r['main_thread_cpu_ms_per_s_without']:.0f} / {r['main_thread_cpu_ms_per_s_with']:.0f} ms/s"
                f" | {r['cpu_us_per_job_without']:.0f} / {r['cpu_us_per_job_with']:.0f} µs |"
            )


if __name__ == "__main__":
    main()

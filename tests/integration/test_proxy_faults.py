"""Connection faults between workers and PostgreSQL (docs/reliability.md).

Worker processes reach the server through a proxy (tests/faultproxy.py) that drops, stalls
and half-closes their connections at random moments, refuses some new ones, and drops the
reply to a ``COMMIT`` or to a statement after the server did the work. Under chained jobs
(continuations, each enqueuing a batch with ``perform_all_later``), stepped jobs, delayed
jobs and a schedule ticking every second, the invariants must hold afterwards:

- every job is in a final state (succeeded: each has attempts to spare);
- every continuation exists exactly once (each link of each chain, each leaf of the batch
  each link enqueues);
- each schedule tick has exactly one job;
- effects repeat only within the documented bound: a job's ``perform`` runs at most once per
  claim (``attempts + resumptions`` times), and a stepped job saving after every item repeats
  at most the item in flight per extra execution.

The server itself is never restarted."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

import onward
import rawsql
import waiting
from faultproxy import FaultyProxy
from onward import stores

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CHAINS, LINKS = 16, 10
STEPPED, ITEMS = 12, 40
DELAYED = 60
WORKERS, CONCURRENCY = 2, 4
CHAOS_AT_LEAST, CHAOS_AT_MOST = 20.0, 60.0


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    import pg  # tests/pg.py

    yield from pg.fresh_database(request)


def through(proxy: FaultyProxy, url: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
    query = "&".join(q for q in (parts.query, "reconnect_timeout=120") if q)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def rows(store: stores.Store) -> list[dict[str, Any]]:
    found = rawsql.execute(
        store,
        "SELECT id, job_class, state, args, attempts, resumptions, parent_id, scheduled_for, error FROM onward_jobs",
    )
    keys = ("id", "job_class", "state", "args", "attempts", "resumptions", "parent_id", "scheduled_for", "error")
    return [dict(zip(keys, r, strict=True)) for r in found]


def effects(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def test_workers_keep_every_invariant_while_their_connections_fail(
    pg_url: str, tmp_path: Path, subprocess_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import jobs_faults  # importable here too (the schedule is declared only where the log is set)

    log = tmp_path / "effects.log"
    store = stores.open_store(pg_url)
    parts = urlsplit(pg_url)
    proxy = FaultyProxy((parts.hostname or "127.0.0.1", parts.port or 5432), seed=int(time.time()))
    env = {**subprocess_env, "ONWARD_FAULTS_LOG": str(log), "PYTHONFAULTHANDLER": "1"}
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with stores.connected(pg_url):
            for chain in range(CHAINS):
                jobs_faults.ChainLink.perform_later(chain, 0, LINKS)
            for key in range(STEPPED):
                jobs_faults.Stepped.perform_later(key, ITEMS)
            for n in range(DELAYED):
                jobs_faults.Delayed.set(wait=n * 0.25).perform_later(n)
        for i in range(WORKERS):
            with open(tmp_path / f"worker-{i}.log", "wb") as out:
                workers.append(
                    subprocess.Popen(
                        [
                            *(sys.executable, "-m", "onward", "worker", "--import", "jobs_faults"),
                            *("--concurrency", str(CONCURRENCY), "--lease-timeout", "3"),
                            *("--database-url", through(proxy, pg_url)),
                        ],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        started = time.monotonic() + 60
        while not all("started" in (tmp_path / f"worker-{i}.log").read_text() for i in range(WORKERS)):
            assert time.monotonic() < started, "the workers did not start"
            time.sleep(0.1)
        proxy.start_chaos()
        expected = CHAINS * LINKS * 3 + STEPPED + DELAYED
        began = time.monotonic()
        while time.monotonic() < began + CHAOS_AT_MOST:
            done = sum(1 for r in rows(store) if r["state"] == "succeeded" and r["job_class"] != "jobs_faults:Tick")
            if done >= expected and time.monotonic() > began + CHAOS_AT_LEAST:
                break
            time.sleep(0.5)
        proxy.calm()
        settle = time.monotonic() + 60
        while True:
            found = [r for r in rows(store) if r["job_class"] != "jobs_faults:Tick"]
            if len(found) >= expected and all(r["state"] in ("succeeded", "failed", "discarded") for r in found):
                break
            if time.monotonic() > settle:
                for w in workers:  # show where each worker is stuck (PYTHONFAULTHANDLER)
                    w.send_signal(signal.SIGABRT)
                    w.wait(10)
            assert time.monotonic() < settle, Counter((r["job_class"], r["state"]) for r in found)
            print("settling:", dict(Counter((r["job_class"], r["state"]) for r in found)), flush=True)
            time.sleep(2)
        for w in workers:
            assert w.poll() is None, f"a worker exited under faults: {w.returncode}"
            w.send_signal(signal.SIGTERM)
        for w in workers:
            assert w.wait(60) == 0
        # A claim whose COMMIT reply was lost leaves its job leased to a worker that never knew
        # it had it: once the lease (3 s) expires, the reaper gives the job back.
        waiting.poll(
            lambda: store.reap_expired() >= 0 and not any(r["state"] == "running" for r in rows(store)),
            "every lease of the stopped workers to end",
            timeout=30.0,
            interval=0.25,
        )
        # A tick whose job the stop released (or that came due meanwhile) runs here.
        monkeypatch.setenv("ONWARD_FAULTS_LOG", str(log))
        with stores.connected(pg_url):
            onward.Worker(schedules=False).run(burst=True)
    finally:
        proxy.close()
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
        for i in range(len(workers)):
            print(f"--- worker {i}\n" + (tmp_path / f"worker-{i}.log").read_text(errors="replace")[-3000:])
        print("faults:", dict(proxy.faults))
    check_invariants(store, log)
    for i in range(WORKERS):  # one log line per event, however the driver words its errors
        lines = (tmp_path / f"worker-{i}.log").read_text().splitlines()
        assert all(line[:2] == "20" for line in lines), [line for line in lines if line[:2] != "20"][:5]
    assert sum(proxy.faults.values()) >= 20, proxy.faults
    store.close()


def check_invariants(store: stores.Store, log: Path) -> None:
    found = rows(store)
    by_id = {r["id"]: r for r in found}
    not_final = [r for r in found if r["state"] != "succeeded"]
    assert not not_final, [(r["job_class"], r["state"], (r["error"] or "")[-300:]) for r in not_final]

    # Every continuation exactly once.
    links = Counter(tuple(json.loads(r["args"])[:2]) for r in found if r["job_class"] == "jobs_faults:ChainLink")
    leaves = Counter(tuple(json.loads(r["args"])) for r in found if r["job_class"] == "jobs_faults:Leaf")
    every = {(c, i) for c in range(CHAINS) for i in range(LINKS)}
    assert set(links) == every
    assert set(leaves) == {(c, i, k) for c, i in every for k in (0, 1)}
    assert max(links.values()) == 1, links
    assert max(leaves.values()) == 1, leaves
    children = Counter(r["parent_id"] for r in found if r["parent_id"])
    for r in found:
        if r["job_class"] == "jobs_faults:ChainLink":
            last = json.loads(r["args"])[1] == LINKS - 1
            assert children[r["id"]] == (2 if last else 3), r

    # Each schedule tick exactly once.
    ticks = Counter(r["scheduled_for"] for r in found if r["job_class"] == "jobs_faults:Tick")
    assert ticks
    assert max(ticks.values()) == 1, ticks

    # Effects within the bound: one per claim; stepped jobs repeat at most the item in flight.
    runs: Counter[str] = Counter()
    items: dict[str, list[int]] = defaultdict(list)
    for words in effects(log):
        kind, job_id = words[0], words[1]
        if kind == "item":
            items[job_id].append(int(words[3]))
        else:
            runs[job_id] += 1
    for job_id, r in by_id.items():
        claims = r["attempts"] + r["resumptions"]
        if r["job_class"] == "jobs_faults:Stepped":
            seen = items[job_id]
            assert set(seen) == set(range(ITEMS)), (job_id, sorted(seen))
            assert len(seen) - ITEMS <= claims - 1, (job_id, len(seen), r["attempts"], r["resumptions"])
        assert 1 <= runs[job_id] <= claims, (r["job_class"], job_id, runs[job_id], r["attempts"], r["resumptions"])

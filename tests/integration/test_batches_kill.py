"""A batch of 300 members run by two worker processes SIGKILLed at random (API §11): the
counters end exact and each callback is enqueued exactly once, on both stores."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import onward
from jobs_batches import Callback, SlowMember
from onward import Store

MEMBERS = 300
KILLS = 6  # at random moments while members run


def worker(store_url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "onward",
        "worker",
        "--import",
        "jobs_batches",
        "--concurrency",
        "2",
        "--lease-timeout",
        "1",
        "--no-schedules",
        "--database-url",
        store_url,
    ]


@pytest.fixture
def spawn(tmp_path: Path, subprocess_env: dict[str, str]) -> Iterator[Callable[[list[str]], subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(command: list[str]) -> subprocess.Popen[bytes]:
        with open(tmp_path / f"process-{len(procs)}.log", "wb") as out:
            proc = subprocess.Popen(command, env=subprocess_env, stdout=out, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_callbacks_are_enqueued_exactly_once_while_workers_are_killed_at_random(
    store: Store, store_url: str, tmp_path: Path, spawn: Callable[[list[str]], subprocess.Popen[bytes]]
) -> None:
    log = str(tmp_path / "runs.log")
    batch = onward.batch("killed workers")
    with batch:
        SlowMember.perform_all_later([(n, log) for n in range(MEMBERS)])
        batch.on_success(Callback, "success", log)
        batch.on_finish(Callback, "finish", log)
    rng = random.Random(13)
    workers = [spawn(worker(store_url)) for _ in range(2)]
    kills = 0
    deadline = time.monotonic() + 100
    at_last_kill = MEMBERS
    while (pending := onward.get_batch(batch.id).pending) > 0:
        assert time.monotonic() < deadline, f"members still pending: {onward.get_batch(batch.id)}"
        time.sleep(0.05)
        if kills >= KILLS or at_last_kill - pending < MEMBERS // (KILLS + 2):
            continue  # kill only once the workers made progress: a loaded machine starts them slowly
        at_last_kill = pending
        time.sleep(rng.uniform(0.0, 0.2))
        victim = rng.randrange(2)
        workers[victim].kill()  # SIGKILL: no graceful stop, its jobs wait for their lease
        workers[victim].wait()
        kills += 1
        workers[victim] = spawn(worker(store_url))
    # every member is final: the callbacks were enqueued by the last member's commit; let
    # the workers run them in peace
    while not all(onward.get_job(i).state == "succeeded" for i in onward.get_batch(batch.id).callback_ids):
        assert time.monotonic() < deadline, "callbacks did not run"
        time.sleep(0.05)
    record = onward.get_batch(batch.id)
    assert (record.state, record.total, record.pending, record.succeeded, record.failed) == (
        "succeeded",
        MEMBERS,
        0,
        MEMBERS,
        0,
    )
    assert [onward.get_job(i).args[0] for i in record.callback_ids] == ["success", "finish"]
    assert all(onward.get_job(i).state == "succeeded" for i in record.job_ids)
    lines = Path(log).read_text().splitlines()
    assert sorted(line for line in lines if line.startswith("callback")) == ["callback finish", "callback success"]
    assert {line for line in lines if line.startswith("member")} == {f"member {n}" for n in range(MEMBERS)}
    assert kills >= KILLS // 2  # the last ones may find every member done
    assert any(onward.get_job(i).attempts > 1 for i in record.job_ids)  # kills hit running members

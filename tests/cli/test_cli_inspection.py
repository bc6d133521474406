"""onward jobs / show / stats / watch against a real store (every backend)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from cli_jobs import Boom, Chain, Flaky, Gated, Greet, Mailing, gate
from click.testing import Result

from onward import Store, Worker
from onward.testing import drain

Invoke = Callable[..., Result]  # the onward_cli fixture (tests/cli/conftest.py)


def test_jobs_lists_newest_first_with_filters(onward_cli: Invoke) -> None:
    assert onward_cli("jobs").output.strip() == "No jobs."
    first = Greet.perform_later("a")
    failed = Boom.perform_later("bad")
    mail = Mailing.perform_later()
    drain()
    result = onward_cli("jobs")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["ID", "CLASS", "QUEUE", "STATE"]
    assert [line.split()[0] for line in lines[1:]] == [mail.id, failed.id, first.id]
    assert lines[2].split()[1:4] == ["Boom", "default", "failed"]
    only_failed = onward_cli("jobs", "--state", "failed").output
    assert failed.id in only_failed
    assert first.id not in only_failed
    assert mail.id in onward_cli("jobs", "--queue", "mailers").output
    assert first.id not in onward_cli("jobs", "--queue", "mailers").output
    by_class = onward_cli("jobs", "--class", "cli_jobs:Greet").output
    assert first.id in by_class
    assert mail.id not in by_class
    assert onward_cli("jobs", "--state", "running").output.strip() == "No jobs match."
    bare = onward_cli("jobs", "--class", "Greet")
    assert bare.exit_code == 1
    assert bare.output == "Error: a job class is given by its import path, module:ClassName; got 'Greet'\n"


def test_jobs_pages_with_before(onward_cli: Invoke) -> None:
    handles = Greet.perform_all_later([(str(i),) for i in range(3)])
    page = onward_cli("jobs", "--limit", "2").output
    assert f"More: onward jobs --before {handles[1].id}" in page
    rest = onward_cli("jobs", "--before", handles[1].id).output
    assert [line.split()[0] for line in rest.splitlines()[1:]] == [handles[0].id]


def test_jobs_json(onward_cli: Invoke) -> None:
    handle = Greet.perform_later("Ada", punctuation="?")
    drain()
    records = json.loads(onward_cli("jobs", "--json").output)
    assert len(records) == 1
    record = records[0]
    assert record["id"] == handle.id
    assert record["state"] == "succeeded"
    assert record["args"] == ["Ada"]
    assert record["kwargs"] == {"punctuation": "?"}
    assert record["result"] == "hello Ada?"
    assert record["finished_at"].endswith("+00:00")


def test_show_prints_arguments_steps_error_and_chain(onward_cli: Invoke) -> None:
    parent = Chain.perform_later("x")
    stepped = Flaky.perform_later()
    failed = Boom.perform_later("it broke")
    drain()
    child = parent.refresh().children[0]

    out = onward_cli("show", child).output
    assert "hello x-1!" in out  # result
    assert '["x-1"]' in out  # args
    chain = out[out.index("Chain") :]
    assert f"Chain {parent.id} succeeded" in chain
    assert f"Greet {child} succeeded  ◀ this job" in chain
    assert parent.refresh().children[1] in chain

    out = onward_cli("show", stepped.id).output
    steps = out[out.index("Steps") :].splitlines()
    assert steps[2].split()[:2] == ["✓", "prepare"]
    assert steps[3].split()[:2] == ["✓", "process"]
    assert "10/10" in steps[3]
    assert "100%" in steps[3]

    result = onward_cli("show", failed.id)
    assert result.exit_code == 0
    assert "Traceback (most recent call last)" in result.output  # the job's stored traceback
    assert "builtins.RuntimeError: it broke" in result.output


def test_show_json_and_prefix(onward_cli: Invoke) -> None:
    handle = Flaky.perform_later()
    drain()
    data = json.loads(onward_cli("show", handle.id[:-3], "--json").output)
    assert data["job"]["id"] == handle.id
    assert [s["name"] for s in data["steps"]] == ["prepare", "process"]
    assert data["steps"][1]["advanced"] == 10
    assert data["tree"]["id"] == handle.id


def test_stats_counts_per_queue_and_state(onward_cli: Invoke) -> None:
    Greet.perform_later("a")
    Boom.perform_later("b")
    Mailing.set(wait=3600).perform_later()
    drain()
    out = onward_cli("stats").output
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    # columns: enqueued running succeeded failed discarded cancelled total
    assert rows["default"] == ["0", "0", "1", "1", "0", "0", "2"]
    assert rows["mailers"] == ["1", "0", "0", "0", "0", "0", "1"]
    assert rows["total"] == ["1", "0", "1", "1", "0", "0", "3"]
    assert "Finished in the last minute: 2" in out
    data = json.loads(onward_cli("stats", "--json", "--minutes", "3").output)
    assert data["queues"]["default"]["failed"] == 1
    assert data["finished_last_minute"] == 2
    assert len(data["per_minute"]) == 3


def test_watch_one_finished_job_prints_it_and_exits(onward_cli: Invoke) -> None:
    handle = Flaky.perform_later()
    drain()
    result = onward_cli("watch", handle.id)
    assert result.exit_code == 0
    assert f"Flaky {handle.id} succeeded (1 attempt, 0 resumptions)" in result.output
    assert "process: 10/10 (100%)" in result.output


@pytest.fixture
def gated_worker(store: Store) -> Iterator[Worker]:
    """A worker thread running jobs from the test's store; ``Gated`` waits for ``gate``."""
    gate.clear()
    worker = Worker(store=store, lease_timeout=30.0)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        yield worker
    finally:
        gate.set()
        worker.stop()
        thread.join(30)


def _watch(store_url: str, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "onward", "watch", *args, "--interval", "0.05", "--database-url", store_url]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_watch_follows_a_job_until_it_finishes(store_url: str, cli_env: dict[str, str], gated_worker: Worker) -> None:
    handle = Gated.perform_later()
    watch = _watch(store_url, cli_env, handle.id)
    try:
        assert watch.stdout is not None
        line = watch.stdout.readline()
        while "3/10" not in line:  # wait until the watcher saw the job stopped at the gate
            assert line, watch.stderr.read() if watch.stderr else ""
            line = watch.stdout.readline()
        gate.set()
        rest = watch.communicate(timeout=30)[0]
    finally:
        watch.kill()
    assert watch.returncode == 0
    assert f"Gated {handle.id} succeeded" in rest


def test_watch_all_shows_running_jobs_until_interrupted(
    store_url: str, cli_env: dict[str, str], gated_worker: Worker
) -> None:
    handle = Gated.perform_later()
    watch = _watch(store_url, cli_env)
    try:
        assert watch.stdout is not None
        line = watch.stdout.readline()
        while not (handle.id in line and "3/10" in line):
            assert line, watch.stderr.read() if watch.stderr else ""
            line = watch.stdout.readline()
        assert line.startswith(f"Gated {handle.id}: work: 3/10 (30%)")
        watch.send_signal(signal.SIGINT)
        _, err = watch.communicate(timeout=30)
    finally:
        watch.kill()
    assert watch.returncode == 0
    assert "Traceback" not in err


def test_show_a_running_job_with_its_step_in_progress(onward_cli: Invoke, store: Store, gated_worker: Worker) -> None:
    handle = Gated.perform_later()
    deadline = time.monotonic() + 30
    while not (store.get(handle.id).steps and store.get(handle.id).steps[0].advanced == 3):
        assert time.monotonic() < deadline, "the job never reached its gate"
        time.sleep(0.01)
    out = onward_cli("show", handle.id).output
    assert "state        running" in out
    assert "worker       " in out
    step = next(line for line in out.splitlines() if " work " in line)
    assert step.split()[0] == "▶"
    assert "3/10" in step
    assert "30%" in step
    assert step.split()[-1].endswith("s")  # an ETA, not "-"
    data = json.loads(onward_cli("show", handle.id, "--json").output)
    assert data["job"]["worker_id"] == gated_worker.worker_id
    assert data["steps"][0]["status"] == "running"
    assert data["steps"][0]["eta"] > 0

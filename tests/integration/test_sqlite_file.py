"""The SQLite file: a damaged, full or vanished file gives an Onward error naming the file and
what to do, never a raw ``sqlite3`` error; a worker whose file was deleted or replaced stops
with that error instead of serving a file nobody else sees."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import onward
from jobs_core import Echo
from onward import OnwardError, stores
from onward.errors import StoreFileError


def test_a_file_that_is_not_a_store_is_refused_naming_it_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    path.write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(onward.ConfigurationError) as caught:
        stores.open_store(f"sqlite:///{path}")
    message = str(caught.value)
    assert str(path) in message
    assert "damaged or is not an Onward store" in message
    assert "restore it from a backup" in message


def test_a_file_damaged_while_open_gives_an_onward_error(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    with stores.connected(f"sqlite:///{path}") as store:
        for i in range(300):
            Echo.perform_later("x" * 500, i)
        store.close()
    with open(path, "r+b") as f:  # keep the header, scramble the pages
        f.seek(4096)
        f.write(os.urandom(os.path.getsize(path) - 4096))
    for wal in (tmp_path / "jobs.db-wal", tmp_path / "jobs.db-shm"):
        wal.unlink(missing_ok=True)

    def use() -> None:
        with stores.connected(f"sqlite:///{path}") as store:
            store.list_jobs(stores.base.JobFilter(limit=1000))
            Echo.perform_later("more")

    with pytest.raises(OnwardError) as caught:
        use()
    assert str(path) in str(caught.value)
    assert "damaged" in str(caught.value)


def test_a_full_file_gives_an_onward_error_naming_it(sqlite_store: stores.Store) -> None:
    Echo.perform_later("first")
    conn = sqlite_store._conn()  # type: ignore[attr-defined]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # this connection may not grow the file
    with pytest.raises(StoreFileError) as caught:
        Echo.perform_all_later([("y" * 100_000,) for _ in range(20)])
    message = str(caught.value)
    assert sqlite_store.path in message  # type: ignore[attr-defined]
    assert "the disk is full" in message
    assert "free disk space" in message


# -- a file deleted or replaced under a running worker ---------------------------------------


def _start_worker(url: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "onward", "worker", "--lease-timeout", "2", "--database-url", url],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_worker_stops_with_a_clear_error_when_its_file_is_deleted_or_replaced(
    tmp_path: Path, subprocess_env: dict[str, str], how: str
) -> None:
    path = tmp_path / "jobs.db"
    url = f"sqlite:///{path}"
    with stores.connected(url):
        first = Echo.perform_later("before").id
    log = tmp_path / "worker.log"
    proc = _start_worker(url, subprocess_env, log)
    try:
        deadline = time.monotonic() + 30
        while stores.open_store(url).get(first).state != "succeeded":
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        if how == "deleted":
            for name in ("jobs.db", "jobs.db-wal", "jobs.db-shm"):
                (tmp_path / name).unlink(missing_ok=True)
        else:
            other = tmp_path / "other.db"
            stores.open_store(f"sqlite:///{other}").close()
            shutil.move(other, path)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log.read_text()
    assert proc.returncode == 1, output
    assert f"Error: the store {path} was {'deleted' if how == 'deleted' else 'replaced by another file'}" in output
    assert "Restart the process" in output
    assert "Traceback" not in output

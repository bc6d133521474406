"""API §1: connecting to a store, the default store, closing, and configuration errors."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import onward
from jobs_core import Add, Echo
from onward import stores
from onward.testing import drain


@pytest.fixture
def no_default(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No default store and no ONWARD_DATABASE_URL during the test; everything restored after."""
    monkeypatch.delenv("ONWARD_DATABASE_URL", raising=False)
    previous = stores.set_default(None)
    try:
        yield
    finally:
        current = stores.set_default(previous)
        if current is not None and current is not previous:
            current.close()


# -- connect() ---------------------------------------------------------------------------


def test_connect_makes_the_store_the_process_wide_default_and_returns_it(no_default: None, store_url: str) -> None:
    store = onward.connect(store_url)
    handle = Add.perform_later(1, 2)
    assert handle.store is store
    assert onward.get_job(handle.id).state == "enqueued"
    assert isinstance(store, onward.Store)


def test_connect_without_url_uses_the_environment_variable(
    no_default: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "from-env.db"
    monkeypatch.setenv("ONWARD_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.chdir(tmp_path)
    store = onward.connect()
    Add.perform_later(1, 2)
    assert path.exists()
    assert not (tmp_path / "onward.sqlite3").exists()
    assert store is stores.current()


def test_connect_without_url_or_environment_uses_onward_sqlite3_in_the_current_directory(
    no_default: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    onward.connect()
    handle = Add.perform_later(1, 2)
    assert (tmp_path / "onward.sqlite3").exists()
    with sqlite3.connect(tmp_path / "onward.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM onward_jobs WHERE id = ?", (handle.id,)).fetchone()[0] == 1


def test_a_relative_sqlite_path_is_resolved_when_connect_is_called(
    no_default: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    onward.connect("sqlite:///jobs.db")
    monkeypatch.chdir(tmp_path / "b")
    handle = Add.perform_later(1, 2)  # the connection opened after the chdir still uses a/jobs.db
    drain()
    assert (tmp_path / "a" / "jobs.db").exists()
    assert not (tmp_path / "b" / "jobs.db").exists()
    assert handle.refresh().result == 3


def test_an_absolute_sqlite_path_uses_four_slashes(no_default: None, tmp_path: Path) -> None:
    path = tmp_path / "abs.db"
    onward.connect(f"sqlite:///{path}")  # "sqlite:///" + "/tmp/..." = four slashes
    Add.perform_later(1, 1)
    assert path.exists()


def test_connect_creates_the_schema_and_reopening_keeps_the_jobs(no_default: None, store_url: str) -> None:
    first = onward.connect(store_url)
    handle = Add.perform_later(2, 3)
    first.close()
    second = onward.connect(store_url)
    assert second.get(handle.id).args == [2, 3]


def test_concurrent_connects_to_a_fresh_store_are_safe(no_default: None, store_url: str) -> None:
    opened: list[onward.Store] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def connect() -> None:
        try:
            start.wait(timeout=10)
            opened.append(stores.open_store(store_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=connect) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert len(opened) == 6
        ids = []
        for i, store in enumerate(opened):
            stores.set_default(store)
            ids.append(Echo.perform_later(i).id)
        assert [opened[0].get(job_id).args for job_id in ids] == [[i] for i in range(6)]
    finally:
        for store in opened:
            store.close()


def test_concurrent_connects_from_several_processes_share_one_sqlite_file(
    no_default: None, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    script = "import sys, onward, jobs_core\nonward.connect(sys.argv[1])\nprint(jobs_core.Add.perform_later(1, 2).id)\n"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, url], env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0], [err.decode() for _, err in outputs]
    store = onward.connect(url)
    ids = {out.decode().strip() for out, _ in outputs}
    assert len(ids) == 4
    assert [store.get(job_id).args for job_id in ids] == [[1, 2]] * 4


# -- SQLite specifics ------------------------------------------------------------------------


def test_the_sqlite_store_uses_wal(sqlite_store: onward.Store, tmp_path: Path) -> None:
    Add.perform_later(1, 2)
    with sqlite3.connect(tmp_path / "onward.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(("query", "expected"), [("", 1), ("?synchronous=full", 2), ("?synchronous=NORMAL", 1)])
def test_the_synchronous_setting_comes_from_the_url(tmp_path: Path, query: str, expected: int) -> None:
    store = stores.open_store(f"sqlite:///{tmp_path / 'sync.db'}{query}")
    try:
        conn = store._conn()  # type: ignore[attr-defined]
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == expected
    finally:
        store.close()


def test_an_unknown_synchronous_setting_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(onward.ConfigurationError, match="synchronous"):
        stores.open_store(f"sqlite:///{tmp_path / 'x.db'}?synchronous=sometimes")


def test_a_missing_directory_is_a_configuration_error_naming_the_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'x.db'}"
    with pytest.raises(onward.ConfigurationError) as info:
        onward.connect(url)
    assert url in str(info.value)
    assert "does not exist" in str(info.value)


# -- closing -------------------------------------------------------------------------------


def test_using_a_closed_store_raises_onward_error(no_default: None, store_url: str) -> None:
    store = onward.connect(store_url)
    handle = Add.perform_later(1, 2)
    store.close()
    with pytest.raises(onward.OnwardError):
        store.get(handle.id)
    with pytest.raises(onward.OnwardError):
        handle.refresh()
    with pytest.raises(onward.OnwardError):
        Add.perform_later(3, 4)  # the default is the closed store
    with pytest.raises(onward.OnwardError):
        onward.get_job(handle.id)
    with pytest.raises(onward.OnwardError):
        onward.Worker(store=store).run(burst=True)


def test_closing_twice_is_harmless(store_url: str) -> None:
    store = stores.open_store(store_url)
    store.close()
    store.close()


def test_handles_and_records_remember_their_store_after_another_connect(
    no_default: None, store_url: str, tmp_path: Path
) -> None:
    first = onward.connect(store_url)
    try:
        handle = Add.perform_later(20, 22)
        record = handle.refresh()
        other = onward.connect(f"sqlite:///{tmp_path / 'other.db'}")
        assert stores.current() is other
        with pytest.raises(KeyError):
            onward.get_job(handle.id)  # the default is now the other store
        drain(store=first)
        assert handle.refresh().state == "succeeded"
        assert handle.wait(timeout=10).result == 42
        assert record.refresh().result == 42
        assert handle.store is first
    finally:
        first.close()


# -- configuration errors --------------------------------------------------------------------


@pytest.mark.parametrize("url", ["mysql://user@host/db", "jobs.db", "redis://localhost:6379/0"])
def test_an_unknown_scheme_is_a_configuration_error_naming_the_url_and_what_to_do(url: str) -> None:
    with pytest.raises(onward.ConfigurationError) as info:
        onward.connect(url)
    message = str(info.value)
    assert url in message
    assert "sqlite:///" in message  # says what to write instead
    assert "postgresql://" in message


def test_an_unknown_scheme_masks_the_password() -> None:
    with pytest.raises(onward.ConfigurationError) as info:
        onward.connect("mysql://alice:s3cret-pw@db.example:3306/jobs")
    message = str(info.value)
    assert "s3cret-pw" not in message
    assert "alice" in message
    assert "db.example:3306" in message


def test_an_unreachable_postgresql_server_is_a_configuration_error_with_the_password_masked(no_default: None) -> None:
    url = "postgresql://alice:s3cret-pw@127.0.0.1:1/jobs"  # nothing listens on port 1
    with pytest.raises(onward.ConfigurationError) as info:
        onward.connect(url)
    message = str(info.value)
    assert "s3cret-pw" not in message
    assert "postgresql://alice:***@127.0.0.1:1/jobs" in message
    assert stores.current() is None  # a failed connect does not replace the default


def test_configuration_errors_are_onward_errors() -> None:
    assert issubclass(onward.ConfigurationError, onward.OnwardError)


def test_a_store_written_by_a_newer_onward_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    stores.open_store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 999")
    with pytest.raises(onward.ConfigurationError, match="upgrade Onward"):
        stores.open_store(f"sqlite:///{path}")


def test_stored_arguments_are_plain_json(sqlite_store: onward.Store, tmp_path: Path) -> None:
    import json
    from decimal import Decimal

    handle = Echo.perform_later(Decimal("1.5"), at=[1, 2])
    with sqlite3.connect(tmp_path / "onward.sqlite3") as conn:
        args, kwargs = conn.execute("SELECT args, kwargs FROM onward_jobs WHERE id = ?", (handle.id,)).fetchone()
    assert json.loads(args) == [{"$t": "decimal", "v": "1.5"}]
    assert json.loads(kwargs) == {"at": [1, 2]}

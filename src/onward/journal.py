"""A worker process's journal: which of its claimed jobs it started, and which successes it
has not committed yet (with their continuations).

A worker claims short jobs several at a time and commits their successes in batches
(:mod:`onward.completions`). If its process dies (a segfault, the OOM killer, SIGKILL), the
store alone cannot tell which of its running jobs really ran: the journal can. Under
``--processes`` each child keeps one (a local file, one line per event, written before the
job starts into the file's pages mapped in memory: no system call, and like a ``write`` it
survives the process's crash, since the pages belong to the file), and the
supervisor reads it as soon as the child dies (:mod:`onward.takeover`): jobs claimed ahead
that never started go back without using an attempt, successes not yet committed are
committed, and only the job that was running when the process died counts the lost try.

Only lines of jobs still claimed are kept: the file is rewritten with those when it grows
past ``ROTATE_AT`` bytes. A line cut short by the crash is ignored, and so are the zero bytes
after the last line (the file is made ``ROTATE_AT`` bytes long up front, to be mapped).
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import hashlib
import json
import mmap
import os
import secrets
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _quote  # a str as a JSON string (C-accelerated)

from onward.stores.base import Checkpoint, Completion, NewJob

__all__ = ["Journal", "JournalContents", "dead_journals", "default_dir", "journal_path", "journals_of", "read_journal"]

ROTATE_AT = 1 << 20
#: The environment variable through which a supervisor tells its children where to journal.
ENV_VAR = "ONWARD_JOURNAL_DIR"


def journal_path(directory: str, pid: int) -> str:
    """A new journal's path for a worker of the process ``pid`` in ``directory`` (a process
    may run several workers)."""
    return os.path.join(directory, f"{pid}-{secrets.token_hex(4)}.journal")


def journals_of(directory: str, pid: int) -> list[str]:
    """The journals the process ``pid`` left in ``directory``."""
    return sorted(glob.glob(os.path.join(glob.escape(directory), f"{pid}-*.journal")))


def default_dir(store_url: str) -> str:
    """Where the workers of this machine keep their journals for the store at ``store_url``
    (made if needed, readable by this user only)."""
    key = hashlib.sha256(store_url.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    base = os.path.join(tempfile.gettempdir(), f"onward-journals-{os.getuid()}")
    os.makedirs(base, mode=0o700, exist_ok=True)
    if os.stat(base).st_uid != os.getuid():
        raise PermissionError(f"{base} belongs to another user")
    directory = os.path.join(base, key)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    return directory


def dead_journals(directory: str) -> list[str]:
    """The journals in ``directory`` of processes of this machine that are gone."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    dead = []
    for name in names:
        pid, dash, rest = name.partition("-")
        if dash and rest.endswith(".journal") and pid.isdigit() and not _alive(int(pid)):
            dead.append(os.path.join(directory, name))
    return dead


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (ended, not yet waited for by its parent) is gone
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _line(record: Sequence[object]) -> bytes:
    return _encode(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")


def _encode(line: str) -> bytes:
    return line.encode("utf-8", "surrogatepass")


def _success_line(done: Completion) -> bytes:
    """The line of a success queued for commit, with what committing it needs."""
    steps, job_state, progressed = done.checkpoint
    error = done.continuation_error
    children = ""
    if done.children:
        children = "," + json.dumps([dataclasses.asdict(c) for c in done.children], ensure_ascii=False)
    return (
        f'["c",{_quote(done.id)},{_quote(done.token)},{_quote(done.result)},'
        f"{'null' if steps is None else _quote(steps)},{'null' if job_state is None else _quote(job_state)},"
        f"{'true' if progressed else 'false'},{'null' if error is None else _quote(error)}{children}]\n"
    ).encode("utf-8", "surrogatepass")


class Journal:
    """The journal of the worker ``worker_id``, in the file ``path`` (created, or emptied)."""

    def __init__(self, path: str, worker_id: str) -> None:
        self.path = path
        self._header = _line(["w", worker_id])
        self._live: dict[str, bytes] = {}  # job id -> its latest line
        self._lock = threading.Lock()
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._size = 0  # bytes of lines written
        self._open(self._header)

    def started(self, job_id: str, token: str, after: Completion | None = None) -> None:
        """The job is about to run: a crash from now on costs it a try. ``after``: a success
        of the same thread not journaled yet, written first in the same copy (its line
        is on disk before it may be handed over for commit)."""
        line = f'["s",{_quote(job_id)},{_quote(token)}]\n'.encode("utf-8", "surrogatepass")
        if after is None:
            self._write(job_id, line)
        else:
            self._write_two(after.id, _success_line(after), job_id, line)

    def succeeded(self, done: Completion) -> None:
        """The job succeeded; its success (with its continuations) is queued for a batched
        commit."""
        self._write(done.id, _success_line(done))

    def ended(self, job_id: str) -> None:
        """The job's execution wrote its own outcome (a success queued for commit stays)."""
        with self._lock:
            line = self._live.get(job_id)
            if line is not None and line.startswith(b'["s"'):
                del self._live[job_id]

    def committed(self, job_id: str) -> None:
        """The job's outcome is in the store: the journal may forget it."""
        with self._lock:
            self._live.pop(job_id, None)

    def forget(self, job_ids: list[str]) -> None:
        """The outcomes of these jobs are in the store (``committed`` for many)."""
        with self._lock:
            pop = self._live.pop
            for job_id in job_ids:
                pop(job_id, None)

    def close(self) -> None:
        """The worker stopped cleanly: nothing to take over; the file is removed."""
        with self._lock:
            if self._fd >= 0:
                self._unmap()
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)
            with contextlib.suppress(OSError):  # the last journal of this store here: leave no empty directory
                os.rmdir(os.path.dirname(self.path))

    def _write(self, job_id: str, line: bytes) -> None:
        with self._lock:
            view = self._map
            if view is None:
                return
            self._live[job_id] = line
            size = self._size
            end = size + len(line)
            if end > len(view):
                self._open(self._header + b"".join(self._live.values()))
            else:
                view[size:end] = line
                self._size = end

    def _write_two(self, first_id: str, first: bytes, second_id: str, second: bytes) -> None:
        with self._lock:
            view = self._map
            if view is None:
                return
            live = self._live
            live[first_id] = first
            live[second_id] = second
            both = first + second
            size = self._size
            end = size + len(both)
            if end > len(view):
                self._open(self._header + b"".join(live.values()))
            else:
                view[size:end] = both
                self._size = end

    def _open(self, content: bytes) -> None:
        """(Under the lock, or from ``__init__``.) Make the file hold ``content`` exactly,
        with room after it for ``ROTATE_AT`` bytes of lines or more, mapped in memory."""
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        capacity = max(ROTATE_AT, 2 * len(content))
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, capacity)
            view = mmap.mmap(fd, capacity)
        except BaseException:
            os.close(fd)
            raise
        view[: len(content)] = content
        os.replace(tmp, self.path)
        if self._fd >= 0:
            self._unmap()
        self._fd, self._map, self._size = fd, view, len(content)

    def _unmap(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        os.close(self._fd)
        self._fd = -1


@dataclass
class JournalContents:
    """What a dead worker's journal says: its id, the jobs it started whose outcome it had
    not written, and the successes it had not committed."""

    worker_id: str
    ran: list[tuple[str, str]] = field(default_factory=list)  # (job id, lease token)
    succeeded: list[Completion] = field(default_factory=list)


def read_journal(path: str) -> JournalContents | None:
    """Read the journal at ``path``; ``None`` if there is none (or it names no worker)."""
    try:
        with open(path, "rb") as f:
            lines = f.read().rstrip(b"\0").split(b"\n")  # (the zeros after the last line)
    except FileNotFoundError:
        return None
    contents: JournalContents | None = None
    latest: dict[str, list[object]] = {}
    for raw in lines:
        try:
            record = json.loads(raw.decode("utf-8", "surrogatepass"))
        except ValueError:
            continue  # the end of a line the crash cut short, or the final empty one
        if not isinstance(record, list) or not record:
            continue
        if record[0] == "w" and contents is None:
            contents = JournalContents(str(record[1]))
        elif record[0] in ("s", "c") and len(record) >= 3:
            latest[str(record[1])] = record
    if contents is None:
        return None
    for job_id, record in latest.items():
        if record[0] == "s":
            contents.ran.append((job_id, str(record[2])))
            continue
        _, _, token, result, steps, job_state, progressed, continuation_error, *more = record
        checkpoint = Checkpoint(_text(steps), _text(job_state), bool(progressed))
        children = [NewJob(**c) for c in more[0]] if more and isinstance(more[0], list) else []
        contents.succeeded.append(
            Completion(job_id, str(token), str(result), checkpoint, _text(continuation_error), children)
        )
    return contents


def _text(value: object) -> str | None:
    return None if value is None else str(value)

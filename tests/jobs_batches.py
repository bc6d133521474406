"""Job classes for the batch tests (module level, so that worker subprocesses import them)."""

from __future__ import annotations

import os
from typing import Any

import onward
from onward import Job, Retry


def _append(path: str | None, text: str) -> None:
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (text + "\n").encode())
        finally:
            os.close(fd)


class Member(Job):
    """Succeeds with ``n``; fails for good (no retry) when ``fail`` is true."""

    retry = Retry(attempts=1)

    def perform(self, n: int, fail: bool = False) -> int:
        if fail:
            raise ValueError(f"member {n} fails")
        return n


class FlakyMember(Job):
    """Fails while the file ``gate`` does not exist, succeeds once it does."""

    retry = Retry(attempts=1)

    def perform(self, gate: str) -> str:
        if not os.path.exists(gate):
            raise RuntimeError("not yet")
        return "ok"


class DiscardedMember(Job):
    discard_on = (KeyError,)

    def perform(self) -> None:
        raise KeyError("gone")


class SlowMember(Job):
    """A member that sleeps a little: workers are killed while members run."""

    retry = Retry(attempts=25, backoff=0)

    def perform(self, n: int, log: str | None = None) -> int:
        import time

        time.sleep(0.02)
        _append(log, f"member {n}")
        return n


class Callback(Job):
    """Records that it ran: in ``self.state`` (returned as its result) and in ``log``."""

    retry = Retry(attempts=25, backoff=0)

    def perform(self, tag: str, log: str | None = None) -> dict[str, Any]:
        _append(log, f"callback {tag}")
        return {"tag": tag, "batch": self.batch_id, "parent_batch": self.parent_batch_id}


class MemberWithChild(Job):
    """A member whose continuation is not a member."""

    def perform(self) -> str:
        return "done"

    def continuations(self) -> None:
        Member.perform_later(99)


class SteppedMember(Job):
    """A member with two steps (the tests interrupt it between them)."""

    def perform(self) -> str:
        self.step("first", lambda: None)
        self.step("second", lambda: None)
        return "stepped"


class OpensBatchInPerform(Job):
    """Opens a batch inside ``perform`` (committed at once, as any enqueue in perform)."""

    def perform(self, n: int) -> str:
        batch = onward.batch(description="from perform")
        with batch:
            Member.perform_all_later([(i,) for i in range(n)])
            batch.on_success(Callback, "perform-success")
        return batch.id


class OpensBatchInContinuations(Job):
    """Opens a batch inside ``continuations``: committed with this job's success."""

    def perform(self, n: int, fail_continuations: bool = False) -> int:
        return n

    def continuations(self, n: int, fail_continuations: bool = False) -> None:
        batch = onward.batch(description="from continuations")
        with batch:
            for i in range(n):
                Member.perform_later(i)
            batch.on_success(Callback, "continuations-success")
        self.state["batch"] = batch.id
        if fail_continuations:
            raise RuntimeError("continuations fail after the batch")


class NestingCallback(Job):
    """A batch's callback that opens a batch of its own, whose callback is ``Callback``."""

    def perform(self, n: int) -> str:
        inner = onward.batch(description=f"nested in {self.parent_batch_id}")
        with inner:
            for i in range(n):
                Member.perform_later(i)
            inner.on_success(Callback, "inner-success")
        return inner.id


class BatchInFlakyContinuations(Job):
    """Opens a batch in ``continuations``, which then raise while the file ``gate`` is missing."""

    def perform(self, gate: str) -> str:
        return "parent"

    def continuations(self, gate: str) -> None:
        batch = onward.batch(description="re-run")
        with batch:
            Member.perform_later(1)
            batch.on_success(Callback, "after re-run")
        if not os.path.exists(gate):
            raise RuntimeError("continuations fail")

"""Jobs for the tests of values and errors (tests/integration/test_values.py, test_errors.py)."""

from __future__ import annotations

from onward import Job, Retry


class UnprintableError(Exception):
    """An exception whose ``__str__`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("cannot describe myself")


class RaisesUnprintable(Job):
    retry = Retry(attempts=1)

    def perform(self) -> None:
        raise UnprintableError()


class RaisesHuge(Job):
    retry = Retry(attempts=1)

    def perform(self, size: int) -> None:
        raise ValueError("HEAD" + "x" * size + "TAIL")


class RaisesMultiline(Job):
    retry = Retry(attempts=2, backoff=0)

    def perform(self) -> None:
        raise ValueError("first line\nsecond line\nthird: line")

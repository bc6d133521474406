"""Jobs for the tracing tests: a chain of three, a stepped job, a failing one."""

from __future__ import annotations

from onward import Job, Retry


class First(Job):
    def perform(self, n: int) -> int:
        return n

    def continuations(self, n: int) -> None:
        Second.perform_later(n + 1)


class Second(Job):
    async def perform(self, n: int) -> int:
        await self.step("double", lambda: None)
        return n

    async def continuations(self, n: int) -> None:
        Third.perform_later(n + 1)


class Third(Job):
    def perform(self, n: int) -> int:
        self.step("one", lambda: None)
        self.step("two", lambda: None)
        return n


class Broken(Job):
    retry = Retry(attempts=2, backoff=0)

    def perform(self) -> None:
        raise ValueError("cannot parse the invoice")

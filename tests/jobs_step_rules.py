"""Jobs that declare or reach steps in ways the step rules forbid (``InvalidStep`` tests)."""

from __future__ import annotations

from jobs_steps import LOG
from onward import Job, Retry, Step


class Shapes(Job):
    """Steps declared or reached in ways the rules forbid; ``shape`` picks one.

    The ``resume_*`` shapes run ``a``, ``b``, ``c`` in the first execution and something
    else once resumed (``self.resumptions > 0``), as after a code change.
    """

    retry = Retry(attempts=3, backoff=0)

    def perform(self, shape: str) -> None:
        getattr(self, "shape_" + shape)()

    def noop(self) -> None:
        LOG.append(("ran", "noop"))

    def two_params(self, step: Step, other: int) -> None: ...

    async def async_fn(self, step: Step) -> None: ...

    def loop(self, step: Step) -> None:
        for i in range(step.cursor or 0, 3):
            step.advance(from_=i)

    def run(self, *names: str) -> None:
        for name in names:
            self.step(name, self.loop if name == "b" else self.noop)

    def shape_duplicate(self) -> None:
        self.run("a", "a")

    def shape_nested(self) -> None:
        self.step("outer", lambda: self.step("inner", self.noop))

    def shape_empty_name(self) -> None:
        self.step("", self.noop)

    def shape_name_not_str(self) -> None:
        self.step(5, self.noop)  # type: ignore[arg-type]

    def shape_missing_method(self) -> None:
        self.step("nothing_here")

    def shape_two_params(self) -> None:
        self.step("two", self.two_params)

    def shape_keyword_only(self) -> None:
        self.step("kw", lambda *, x: None)

    def shape_not_callable(self) -> None:
        self.step("nc", 42)  # type: ignore[arg-type]

    def shape_async_in_sync(self) -> None:
        self.step("asy", self.async_fn)

    def shape_bad_start(self) -> None:
        self.step("st", self.noop, start={1, 2})

    def shape_method_default(self) -> None:
        self.step("noop")

    def shape_resume_swapped(self) -> None:
        self.run(*(("a", "b", "c") if self.resumptions == 0 else ("b", "a", "c")))

    def shape_resume_new_before_completed(self) -> None:
        self.run(*(("a", "b", "c") if self.resumptions == 0 else ("z", "a", "b", "c")))

    def shape_resume_other_before_in_progress(self) -> None:
        self.run(*(("a", "b", "c") if self.resumptions == 0 else ("a", "c", "b")))

    def shape_resume_added_after_completed(self) -> None:
        self.run(*(("a", "b", "c") if self.resumptions == 0 else ("a", "x", "b", "c")))

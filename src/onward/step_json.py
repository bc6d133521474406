"""Encoding step records for a checkpoint, fast enough to run at every ``advance``.

With ``checkpoint_interval = 0`` every advance writes the job's step records. Within a step
only the step in progress changes between saves, so the other records are encoded once per
step boundary and the current one is written from a template; common cursors (``None``,
``int``) skip the general encoder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from onward import serialization

if TYPE_CHECKING:
    from onward.steps import Step


class StepsEncoder:
    """Encodes a runner's step records; :meth:`reset` whenever a step starts or ends."""

    __slots__ = ("_head", "_parts", "_slot", "_tail", "job_name")

    def __init__(self, job_name: str) -> None:
        self.job_name = job_name
        self._parts: list[str] | None = None
        self._slot = 0
        self._head = self._tail = ""

    def reset(self) -> None:
        self._parts = None

    def encode(self, records: list[dict[str, Any]], step: Step | None) -> str:
        if step is None:
            return serialization.to_json(records, "steps") if records else "[]"
        parts = self._parts
        if parts is None:
            parts = self._parts = [
                "" if rec is step._record else serialization.to_json(rec, f"steps[{i}]")
                for i, rec in enumerate(records)
            ]
            self._slot = next(i for i, rec in enumerate(records) if rec is step._record)
            rec = step._record
            self._head = '{"name":' + serialization.to_json(rec["name"]) + ',"status":"running","cursor":'
            self._tail = ',"started_at":' + serialization.to_json(rec["started_at"]) + ',"completed_at":null}'
        parts[self._slot] = (
            f"{self._head}{self._value(step, step.cursor, 'cursor')},"
            f'"advanced":{step.advanced},"total":{self._value(step, step.total, "total")}{self._tail}'
        )
        return "[" + ",".join(parts) + "]"

    def _value(self, step: Step, value: Any, what: str) -> str:
        if value is None:
            return "null"
        if type(value) is int:
            return int.__repr__(value)
        return serialization.to_json(value, f"{self.job_name}: step {step.name!r}: {what}")

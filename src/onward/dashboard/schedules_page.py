"""The dashboard's Schedules page: every stored schedule with its next tick, its last tick
and that tick's job, paused or not, and whether a live worker runs it; Pause and Resume are
POSTs carrying the CSRF token, like a job's Retry and Discard."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from onward.admin import Admin, ScheduleNotFound
from onward.dashboard import pausing

__all__ = ["routes"]

SCHEDULES = pausing.Pausable(
    path="/schedules",
    field="key",
    done={
        "pause": "Schedule paused: it enqueues nothing until resumed.",
        "resume": "Schedule resumed: it ticks again from now on (the paused time is not caught up).",
    },
    missing="No schedule key was sent.",
    pause=Admin.pause_schedule,
    resume=Admin.resume_schedule,
    errors=((ScheduleNotFound, 404),),
)


def routes(admin: Callable[[], Admin], render: pausing.Render) -> list[Route]:
    """``GET /schedules`` and ``POST /schedules/pause`` / ``/schedules/resume`` (form field ``key``)."""

    def page(request: Request, notice: str | None, error: str | None, status: int) -> Response:
        return render(
            request, "schedules.html", status=status, nav="schedules", schedules=admin().schedules(),
            notice=notice, error=error,
        )  # fmt: skip

    return pausing.routes(SCHEDULES, page, admin, render)

"""The dashboard's Queues page: every queue with its jobs per state, paused or not; Pause and
Resume are POSTs carrying the CSRF token, like a job's Retry and Cancel."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from onward.admin import STATES, Admin
from onward.dashboard import pausing

__all__ = ["routes"]

QUEUES = pausing.Pausable(
    path="/queues",
    field="name",
    done={
        "pause": "Queue paused: no worker claims its jobs until it is resumed (jobs can still be enqueued).",
        "resume": "Queue resumed: workers claim its jobs again.",
    },
    missing="No queue name was sent.",
    pause=Admin.pause_queue,
    resume=Admin.resume_queue,
    errors=((ValueError, 400),),
    empty_allowed=True,  # refused by the queue name rules, with their message
)


def routes(admin: Callable[[], Admin], render: pausing.Render) -> list[Route]:
    """``GET /queues`` and ``POST /queues/pause`` / ``/queues/resume`` (form field ``name``)."""

    def page(request: Request, notice: str | None, error: str | None, status: int) -> Response:
        return render(
            request, "queues.html", status=status, nav="queues", queues=admin().queues(), states=STATES,
            notice=notice, error=error,
        )  # fmt: skip

    return pausing.routes(QUEUES, page, admin, render)

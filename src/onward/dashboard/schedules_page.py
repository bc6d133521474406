"""The dashboard's Schedules page: every stored schedule with its next tick, its last tick
and that tick's job, paused or not, and whether a live worker runs it; Pause and Resume are
POSTs carrying the CSRF token, like a job's Retry and Discard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from onward.admin import Admin, ScheduleNotFound
from onward.dashboard import csrf, security

__all__ = ["routes"]

_DONE = {
    "pause": "Schedule paused: it enqueues nothing until resumed.",
    "resume": "Schedule resumed: it ticks again from now on (the paused time is not caught up).",
}

Render = Callable[..., HTMLResponse]


def routes(admin: Callable[[], Admin], render: Render) -> list[Route]:
    """``GET /schedules`` and ``POST /schedules/pause`` / ``/schedules/resume`` (form field ``key``)."""

    def page(request: Request, notice: str | None = None, error: str | None = None, status: int = 200) -> Response:
        return render(
            request, "schedules.html", status=status, nav="schedules", schedules=admin().schedules(),
            notice=notice, error=error,
        )  # fmt: skip

    async def listing(request: Request) -> Response:
        done = request.query_params.get("done", "")
        notice = None
        if done in _DONE:
            notice = f"{request.query_params.get('key', '')}: {_DONE[done]}"
        return await run_in_threadpool(page, request, notice)

    def action(name: str, run: Callable[[Admin, str], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            refused = await csrf.refusal(request)
            if refused is not None:
                message = f"This form was refused: {refused}. Go back, reload the page and try again."
                return render(request, "refused.html", status=403, message=message)
            form = await request.form()
            key = form.get("key")
            if not isinstance(key, str) or not key:
                return await run_in_threadpool(page, request, None, "No schedule key was sent.", 400)
            try:
                await run_in_threadpool(run, admin(), key)
            except ScheduleNotFound as exc:
                return await run_in_threadpool(page, request, None, str(exc), 404)
            target = f"{security.base_path(request)}/schedules?{urlencode({'done': name, 'key': key})}"
            return RedirectResponse(target, status_code=303)

        return endpoint

    return [
        Route("/schedules", listing, name="schedules"),
        Route("/schedules/pause", action("pause", Admin.pause_schedule), methods=["POST"], name="pause_schedule"),
        Route("/schedules/resume", action("resume", Admin.resume_schedule), methods=["POST"], name="resume_schedule"),
    ]

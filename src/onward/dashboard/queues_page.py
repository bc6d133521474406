"""The dashboard's Queues page: every queue with its jobs per state, paused or not; Pause and
Resume are POSTs carrying the CSRF token, like a job's Retry and Cancel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from onward.admin import STATES, Admin
from onward.dashboard import csrf, security

__all__ = ["routes"]

_DONE = {
    "pause": "Queue paused: no worker claims its jobs until it is resumed (jobs can still be enqueued).",
    "resume": "Queue resumed: workers claim its jobs again.",
}

Render = Callable[..., HTMLResponse]


def routes(admin: Callable[[], Admin], render: Render) -> list[Route]:
    """``GET /queues`` and ``POST /queues/pause`` / ``/queues/resume`` (form field ``name``)."""

    def page(request: Request, notice: str | None = None, error: str | None = None, status: int = 200) -> Response:
        return render(
            request, "queues.html", status=status, nav="queues", queues=admin().queues(), states=STATES,
            notice=notice, error=error,
        )  # fmt: skip

    async def listing(request: Request) -> Response:
        done = request.query_params.get("done", "")
        notice = None
        if done in _DONE:
            notice = f"{request.query_params.get('name', '')}: {_DONE[done]}"
        return await run_in_threadpool(page, request, notice)

    def action(name: str, run: Callable[[Admin, str], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            refused = await csrf.refusal(request)
            if refused is not None:
                message = f"This form was refused: {refused}. Go back, reload the page and try again."
                return render(request, "refused.html", status=403, message=message)
            form = await request.form()
            queue = form.get("name")
            if not isinstance(queue, str):
                return await run_in_threadpool(page, request, None, "No queue name was sent.", 400)
            try:
                await run_in_threadpool(run, admin(), queue)
            except ValueError as exc:
                return await run_in_threadpool(page, request, None, str(exc), 400)
            target = f"{security.base_path(request)}/queues?{urlencode({'done': name, 'name': queue})}"
            return RedirectResponse(target, status_code=303)

        return endpoint

    return [
        Route("/queues", listing, name="queues"),
        Route("/queues/pause", action("pause", Admin.pause_queue), methods=["POST"], name="pause_queue"),
        Route("/queues/resume", action("resume", Admin.resume_queue), methods=["POST"], name="resume_queue"),
    ]

"""A dashboard page listing things an operator can pause and resume (schedules, queues):
``GET /<path>`` shows the page, with a notice after an action; ``POST /<path>/pause`` and
``/<path>/resume`` carry the CSRF token and the thing's name in one form field, then redirect
back to the page."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from onward.admin import Admin
from onward.dashboard import csrf, security

__all__ = ["Pausable", "routes"]

Render = Callable[..., HTMLResponse]
#: Renders the page: (request, notice, error, status).
Page = Callable[[Request, str | None, str | None, int], Response]


@dataclass(frozen=True, slots=True)
class Pausable:
    """What a page pauses: its ``path`` (``/schedules``), the form and query ``field`` naming
    one, the notice after each action (``done``), the error when no name was sent
    (``missing``; an empty name counts as missing unless ``empty_allowed``), the ``Admin``
    methods, and the errors those raise with the status to answer them with."""

    path: str
    field: str
    done: Mapping[str, str]
    missing: str
    pause: Callable[[Admin, str], Any]
    resume: Callable[[Admin, str], Any]
    errors: tuple[tuple[type[Exception], int], ...]
    empty_allowed: bool = False


def routes(what: Pausable, page: Page, admin: Callable[[], Admin], render: Render) -> list[Route]:
    """The page's routes, named ``<name>``, ``pause_<name>`` and ``resume_<name>`` (``name``:
    the path without its slash, singular for the actions: ``pause_schedule``)."""
    name = what.path.strip("/")

    async def listing(request: Request) -> Response:
        done = request.query_params.get("done", "")
        notice = None
        if done in what.done:
            notice = f"{request.query_params.get(what.field, '')}: {what.done[done]}"
        return await run_in_threadpool(page, request, notice, None, 200)

    def action(done: str, run: Callable[[Admin, str], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            refused = await csrf.refusal(request)
            if refused is not None:
                message = f"This form was refused: {refused}. Go back, reload the page and try again."
                return render(request, "refused.html", status=403, message=message)
            form = await request.form()
            value = form.get(what.field)
            if not isinstance(value, str) or not (value or what.empty_allowed):
                return await run_in_threadpool(page, request, None, what.missing, 400)
            try:
                await run_in_threadpool(run, admin(), value)
            except tuple(kind for kind, _ in what.errors) as exc:
                status = next(code for kind, code in what.errors if isinstance(exc, kind))
                return await run_in_threadpool(page, request, None, str(exc), status)
            target = f"{security.base_path(request)}{what.path}?{urlencode({'done': done, what.field: value})}"
            return RedirectResponse(target, status_code=303)

        return endpoint

    one = name.removesuffix("s")
    return [
        Route(what.path, listing, name=name),
        Route(f"{what.path}/pause", action("pause", what.pause), methods=["POST"], name=f"pause_{one}"),
        Route(f"{what.path}/resume", action("resume", what.resume), methods=["POST"], name=f"resume_{one}"),
    ]

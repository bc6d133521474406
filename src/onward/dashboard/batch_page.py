"""The dashboard's batch page: a batch's counts, a progress bar, its members page by page
(enqueue order) and its callbacks. A member's (or a callback's) job page links here."""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from onward.admin import Admin, BatchNotFound

__all__ = ["routes"]

Render = Callable[..., HTMLResponse]


def routes(admin: Callable[[], Admin], render: Render) -> list[Route]:
    """``GET /batches/{batch_id}`` (``?page=N`` for the members' page N)."""

    async def batch(request: Request) -> Response:
        batch_id = request.path_params["batch_id"]
        try:
            page = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            page = 1
        try:
            view = await run_in_threadpool(admin().batch, batch_id, page)
        except BatchNotFound as exc:
            return render(request, "not_found.html", status=404, nav="jobs", message=str(exc))
        return render(request, "batch.html", nav="jobs", view=view, batch=view.record)

    return [Route("/batches/{batch_id}", batch, name="batch")]

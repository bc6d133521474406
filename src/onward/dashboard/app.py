"""The dashboard as an ASGI application: :func:`create_app`.

Serve it with ``onward dashboard``, or mount it in your own Starlette or FastAPI
application::

    from onward.dashboard import create_app

    app.mount("/jobs-dashboard", create_app(store))

Every page is rendered on the server from :mod:`onward.admin` (the dashboard never queries
a store itself); a little plain JavaScript (``static/dashboard.js``) keeps the overview and
a running job's steps up to date. Changing a job (retry, discard, cancel) or a queue (pause,
resume) is a POST with a CSRF token.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import onward
from onward import connecting
from onward.admin import (
    CONTINUATION_FAILED,
    STATES,
    ActionRefused,
    Admin,
    JobDetail,
    JobNotFound,
    actions,
    format_duration,
)
from onward.dashboard import api, batch_page, csrf, queues_page, schedules_page, security, views
from onward.errors import OnwardError
from onward.records import JobRecord

if TYPE_CHECKING:
    from onward.stores.base import Store

__all__ = ["create_app"]

HERE = Path(__file__).parent
#: Jobs per page in the jobs list.
PAGE_SIZE = 50
#: Minutes of throughput on the overview chart.
CHART_MINUTES = 60
#: Seconds the jobs list reuses the queue names it offers as filters.
QUEUE_NAMES_TTL = 60.0

_DONE = {
    "retry": "Job enqueued again: it runs as soon as a worker is free.",
    "discard": "Job discarded: it will not run.",
    "cancel": "Cancelled: an enqueued job will not run; a running one stops at its next step boundary or checkpoint.",
    "rerun-continuations": "Its continuations will run again: the next free worker runs them.",
}


def create_app(
    store: Store | None = None,
    token: str | None = None,
    *,
    allowed_hosts: Iterable[str] | None = None,
) -> Starlette:
    """The dashboard over ``store`` (default: ``onward``'s default store, connected on the
    first request). With ``token``, every request must carry it (see
    :mod:`onward.dashboard.security`); ``allowed_hosts`` limits the ``Host`` header."""
    templates = _environment()
    queue_names = _QueueNames()

    def admin() -> Admin:
        return Admin(store if store is not None else connecting.default())

    def render(
        request: Request, name: str, status: int = 200, headers: dict[str, str] | None = None, **context: object
    ) -> HTMLResponse:
        base = security.base_path(request)
        context.setdefault("nav", None)
        page = templates.get_template(name).render(
            base=base,
            csrf=security.csrf_token(request),
            csrf_field=csrf.CSRF_FIELD,
            version=onward.__version__,
            store_url=admin().store.url,
            now=time.time(),
            **context,
        )
        return HTMLResponse(page, status_code=status, headers={**(headers or {}), "cache-control": "no-store"})

    def overview(request: Request) -> Response:
        ops = admin()
        stats = ops.stats(CHART_MINUTES)
        queue_names.update(q.queue for q in stats.queues)
        context: dict[str, Any] = {
            "stats": stats,
            "running": ops.running(limit=50),
            "chart": views.chart(stats.per_minute),
        }
        if request.query_params.get("fragment") == "live":
            return render(request, "overview_live.html", **context)
        return render(request, "overview.html", nav="overview", **context)

    def jobs(request: Request) -> Response:
        q = request.query_params
        state = q.get("state") or None
        filters = {
            "state": None if state == CONTINUATION_FAILED else state,
            "queue": q.get("queue") or None,
            "job_class": q.get("class") or None,
            "search": q.get("search") or None,
            "parent_id": q.get("parent") or None,
            "schedule_key": q.get("schedule") or None,
        }
        ops = admin()
        queues = queue_names.get(ops)
        error = None
        try:
            page = ops.jobs(
                **filters,
                before=q.get("before") or None,
                limit=PAGE_SIZE,
                continuation_failed=state == CONTINUATION_FAILED,
            )
        except ValueError as exc:
            error, page = str(exc), None
        kept = {k: v for k, v in q.items() if k not in ("before",) and v}
        return render(
            request,
            "jobs.html",
            status=400 if error else 200,
            nav="jobs",
            page=page,
            error=error,
            filters={**filters, "state": state},
            queues=queues,
            states=STATES,
            query=kept,
            older=_query(kept, before=page.next) if page and page.next else None,
            first=_query(kept) if q.get("before") else None,
        )

    def job(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        try:
            detail = admin().job(job_id)
        except JobNotFound as exc:
            return render(request, "not_found.html", status=404, nav="jobs", message=str(exc))
        return _job_page(request, detail, render, notice=_DONE.get(request.query_params.get("done", "")))

    def action(name: str, run: Callable[[Admin, str], JobRecord]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            job_id = request.path_params["job_id"]
            refused = await csrf.refusal(request)
            if refused is not None:
                message = f"This form was refused: {refused}. Go back, reload the page and try again."
                return render(request, "refused.html", status=403, message=message)
            ops = admin()
            try:
                record = await run_in_threadpool(run, ops, job_id)
            except JobNotFound as exc:
                return render(request, "not_found.html", status=404, nav="jobs", message=str(exc))
            except ActionRefused as exc:
                detail = await run_in_threadpool(ops.job, job_id)
                return _job_page(request, detail, render, error=str(exc), status=409)
            target = f"{security.base_path(request)}/jobs/{record.id}?done={name}"
            return RedirectResponse(target, status_code=303)

        return endpoint

    async def metrics(request: Request) -> Response:
        try:
            from onward.contrib import prometheus
        except ImportError as exc:
            message = (
                f"/metrics needs prometheus-client ({exc.name or exc} is missing): pip install 'onward[metrics]'\n"
            )
            return PlainTextResponse(message, status_code=501)
        body, content_type = prometheus.queue_metrics(await run_in_threadpool(admin().ready_queues))
        return Response(body, media_type=content_type, headers={"cache-control": "no-store"})

    async def onward_error(request: Request, exc: Exception) -> Response:
        if security.is_api(request.scope):
            return JSONResponse({"error": f"the store could not answer: {exc}"}, status_code=503)
        return render(request, "refused.html", status=503, message=f"The store could not answer: {exc}")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        message = _http_message(request, exc.status_code, headers.get("Allow", ""))
        if security.is_api(request.scope):
            return JSONResponse(
                {"error": message}, status_code=exc.status_code, headers={**headers, "cache-control": "no-store"}
            )
        template = "not_found.html" if exc.status_code == 404 else "refused.html"
        return render(request, template, status=exc.status_code, headers=headers, message=message)

    async def server_error(request: Request, exc: Exception) -> Response:
        # Outside the guard: the answer carries the security headers itself.
        message = "The dashboard failed to answer this request; its server's log has the details."
        return security.error_response(security.is_api(request.scope), 500, message)

    routes = [
        Route("/", overview, name="overview"),
        Route("/jobs", jobs, name="jobs"),
        Route("/jobs/{job_id}", job, name="job"),
        Route("/jobs/{job_id}/retry", action("retry", Admin.retry), methods=["POST"], name="retry"),
        Route("/jobs/{job_id}/discard", action("discard", Admin.discard), methods=["POST"], name="discard"),
        Route("/jobs/{job_id}/cancel", action("cancel", Admin.cancel), methods=["POST"], name="cancel"),
        Route(
            "/jobs/{job_id}/rerun-continuations",
            action("rerun-continuations", Admin.rerun_continuations),
            methods=["POST"],
            name="rerun_continuations",
        ),
        Route("/metrics", metrics, name="metrics"),
        *schedules_page.routes(admin, render),
        *queues_page.routes(admin, render),
        *batch_page.routes(admin, render),
        Mount("/api", routes=api.routes(admin)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(security.Guard, token=token, allowed_hosts=allowed_hosts)],
        exception_handlers={OnwardError: onward_error, HTTPException: http_error, 500: server_error},
    )
    return app


class _QueueNames:
    """The queue names offered by the jobs list's filter, at most :data:`QUEUE_NAMES_TTL`
    seconds old. Finding them counts every job, which a page of 50 jobs should not pay for
    on a big table; the overview refreshes them for free."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: list[str] = []
        self._at = -math.inf

    def update(self, names: Iterable[str]) -> None:
        with self._lock:
            self._names, self._at = sorted(names), time.monotonic()

    def get(self, ops: Admin) -> list[str]:
        with self._lock:
            if time.monotonic() - self._at < QUEUE_NAMES_TTL:
                return list(self._names)
        names = [c.queue for c in ops.counts()]
        self.update(names)
        return names


def _job_page(
    request: Request,
    detail: JobDetail,
    render: Callable[..., HTMLResponse],
    notice: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    record = detail.job
    allowed = actions(record)
    return render(
        request,
        "job.html",
        status=status,
        nav="jobs",
        d=detail,
        steps=detail.steps,
        job=record,
        timeline=views.timeline(record),
        took=_took(record),
        notice=notice,
        error=error,
        can_retry="retry" in allowed,
        can_discard="discard" in allowed,
        can_cancel="cancel" in allowed and record.cancel_requested_at is None,
        can_rerun_continuations=record.state == "succeeded" and record.continuation_error is not None,
    )


#: The last part of the addresses of the buttons on a job's page.
_ACTIONS = ("/retry", "/discard", "/cancel", "/rerun-continuations")


def _http_message(request: Request, status: int, allow: str) -> str:
    path = request.url.path
    if status == 404:
        return f"nothing at {path}" if security.is_api(request.scope) else f"There is nothing at {path}."
    if status != 405:
        try:
            return HTTPStatus(status).phrase
        except ValueError:
            return f"Error {status}"
    if security.is_api(request.scope):
        return f"{request.method} is not allowed on {path}: use {allow}"
    if path.endswith(_ACTIONS):
        return f"{path} takes only a POST: it is a button on a job's page, and nothing changes a job on a GET."
    return f"{path} does not take a {request.method} request (only {allow})."


def _took(job: JobRecord) -> str:
    if job.started_at is None:
        return "-"
    end = job.finished_at.timestamp() if job.finished_at is not None else time.time()
    return format_duration(end - job.started_at.timestamp())


def _query(params: dict[str, str], **extra: str) -> str:
    return "?" + urlencode({**params, **extra}) if params or extra else "?"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=views.when,
        ago=views.ago,
        class_name=views.class_name,
        module_name=views.module_name,
        pretty=views.pretty,
        compact=views.compact,
        arguments=views.arguments,
        percent=views.percent,
        rate=views.rate,
        duration=format_duration,
        last_line=views.last_line,
        cut=views.cut,
        done=views.done,
        plural=views.plural,
        times=views.times,
    )
    return env

"""The dashboard's JSON API, under ``/api/``: the data the pages show, for scripts and for
the pages' live updates. Documented in ``docs/dashboard.md``.

Values are plain JSON: records as ``onward.admin.to_plain`` writes them (datetimes as
ISO 8601 strings in UTC). Errors are ``{"error": "<one line>"}`` with status 400 (bad
parameter), 401 (no token), 403 (no CSRF token, or sent by another site), 404 (unknown job
or address), 405 (wrong method, with ``Allow``), 409 (the job's state forbids the action),
500 (an unexpected failure) or 503 (the store could not answer); the application's handlers
and :class:`onward.dashboard.security.Guard` write the ones that are not raised here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from onward.admin import CONTINUATION_FAILED, MAX_PAGE, ActionRefused, Admin, JobNotFound, to_plain
from onward.dashboard import csrf, security
from onward.errors import OnwardError
from onward.records import JobRecord

__all__ = ["routes"]

#: Jobs per page when ``limit`` is not given.
DEFAULT_LIMIT = 50
#: Minutes of throughput when ``minutes`` is not given (and the most one may ask).
DEFAULT_MINUTES = 60
MAX_MINUTES = 24 * 60


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(to_plain(data), status_code=status, headers={"cache-control": "no-store"})


def _error(message: str, status: int) -> JSONResponse:
    return _json({"error": message}, status)


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _guarded(fn: Callable[[Request], JSONResponse]) -> Callable[[Request], JSONResponse]:
    """Turn user errors into JSON error responses (sync endpoints run in a thread)."""

    def endpoint(request: Request) -> JSONResponse:
        try:
            return fn(request)
        except JobNotFound as exc:
            return _error(str(exc), 404)
        except ValueError as exc:
            return _error(str(exc), 400)
        except OnwardError as exc:
            return _error(f"the store could not answer: {exc}", 503)

    return endpoint


def routes(admin: Callable[[], Admin]) -> list[Route]:
    """The API's routes, reading and acting through ``admin()``."""

    @_guarded
    def overview(request: Request) -> JSONResponse:
        minutes = _int_param(request, "minutes", DEFAULT_MINUTES, 1, MAX_MINUTES)
        ops = admin()
        s = ops.stats(minutes)
        return _json(
            {
                "queues": [{"queue": q.queue, "counts": q.counts, "total": q.total} for q in s.queues],
                "totals": s.totals,
                "per_minute": [
                    {
                        "start": m.start,
                        "succeeded": m.succeeded,
                        "failed": m.failed,
                        "discarded": m.discarded,
                        "cancelled": m.cancelled,
                        "total": m.total,
                    }
                    for m in s.per_minute
                ],
                "running": [{"job": r.job, "step": r.step} for r in ops.running(limit=100)],
            }
        )

    @_guarded
    def jobs(request: Request) -> JSONResponse:
        q = request.query_params
        state = q.get("state") or None
        page = admin().jobs(
            state=None if state == CONTINUATION_FAILED else state,
            continuation_failed=state == CONTINUATION_FAILED,
            queue=q.get("queue") or None,
            job_class=q.get("class") or None,
            search=q.get("search") or None,
            parent_id=q.get("parent") or None,
            before=q.get("before") or None,
            limit=_int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_PAGE),
        )
        return _json({"jobs": page.jobs, "next": page.next})

    @_guarded
    def job(request: Request) -> JSONResponse:
        d = admin().job(request.path_params["job_id"])
        return _json({"job": d.job, "steps": d.steps, "tree": d.tree, "waiting": d.waiting})

    def csrf_token(request: Request) -> JSONResponse:
        return _json({"csrf_token": security.csrf_token(request)})

    def action(run: Callable[[Admin, str], JobRecord]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            refused = await csrf.refusal(request)
            if refused == csrf.NO_TOKEN:
                return _error(
                    f"{refused}: send the X-CSRF-Token header that GET /api/csrf gives, with the "
                    f"{csrf.CSRF_COOKIE} cookie it sets, or authenticate with Authorization: Bearer <token>",
                    403,
                )
            if refused is not None:
                return _error(f"refused: {refused}", 403)
            try:
                record = await run_in_threadpool(run, admin(), request.path_params["job_id"])
            except JobNotFound as exc:
                return _error(str(exc), 404)
            except ActionRefused as exc:
                return _error(str(exc), 409)
            except OnwardError as exc:
                return _error(f"the store could not answer: {exc}", 503)
            return _json({"job": record})

        return endpoint

    return [
        Route("/overview", overview, name="api_overview"),
        Route("/jobs", jobs, name="api_jobs"),
        Route("/jobs/{job_id}", job, name="api_job"),
        Route("/csrf", csrf_token, name="api_csrf"),
        Route("/jobs/{job_id}/retry", action(Admin.retry), methods=["POST"], name="api_retry"),
        Route("/jobs/{job_id}/discard", action(Admin.discard), methods=["POST"], name="api_discard"),
        Route("/jobs/{job_id}/cancel", action(Admin.cancel), methods=["POST"], name="api_cancel"),
        Route(
            "/jobs/{job_id}/rerun-continuations",
            action(Admin.rerun_continuations),
            methods=["POST"],
            name="api_rerun_continuations",
        ),
    ]

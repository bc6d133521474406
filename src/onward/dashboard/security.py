"""Who may use the dashboard, and how its forms are protected.

:class:`Guard` is an ASGI middleware in front of every dashboard request. It

- checks the ``Host`` header against ``allowed_hosts`` when given (the command passes the
  loopback names when it runs without a token, so a web page cannot reach a local dashboard
  through a DNS name it controls: "DNS rebinding");
- with an access ``token``, lets a request through only when it carries it: an
  ``Authorization: Bearer <token>`` header, or the ``onward_token`` cookie that the login
  link (any page with ``?token=<token>``) sets before redirecting to the same page without it;
- refuses a request whose address carries a NUL character (``%00``) with status 400: no job
  id, queue, class or page contains one, and some databases cannot even compare with one;
- hands every visitor a random nonce in the ``onward_csrf`` cookie and the endpoints the form
  token that goes with it (see :mod:`onward.dashboard.csrf`);
- adds headers that keep job data inert: a strict Content-Security-Policy (no inline script,
  no inline style), ``nosniff``, no framing, and a referrer only for the dashboard's own
  requests (so the login link never leaks to another site, and the browser names the
  dashboard in the ``Origin`` header of its forms).

The login link redirects only to a path of the dashboard itself, however its address is
written.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable
from html import escape
from urllib.parse import parse_qsl, quote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onward.dashboard import csrf
from onward.dashboard.csrf import CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "LOOPBACK_HOSTS",
    "TOKEN_COOKIE",
    "TOKEN_ENV_VAR",
    "Guard",
    "base_path",
    "csrf_token",
    "error_response",
    "is_api",
    "is_loopback",
]

TOKEN_ENV_VAR = "ONWARD_DASHBOARD_TOKEN"
TOKEN_COOKIE = "onward_token"
#: Host names that reach only this machine (the ``Host`` header values a loopback-only
#: dashboard accepts).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

# The key under which this middleware leaves the base path in the ASGI scope.
_BASE = "onward.base"
#: Characters a path may keep in the login link's redirect (besides letters, digits, ``_.-~``).
_PATH_SAFE = "/:@!$&'()*+,;="

_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` serves only this machine (127.0.0.0/8, ::1, localhost)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def base_path(request: Request) -> str:
    """The path the dashboard is served under ("" at the root, "/ops" when mounted there)."""
    base: str = request.scope.get(_BASE, request.scope.get("root_path", ""))
    return base


def csrf_token(request: Request) -> str:
    """This visitor's CSRF token, to put in forms."""
    token: str = request.scope.get(csrf.SCOPE_TOKEN, "")
    return token


def is_api(scope: Scope) -> bool:
    """Whether the request is for the JSON API (under ``/api/``), whose errors are JSON."""
    path: str = scope.get("path", "")
    rest = path[len(scope.get(_BASE, scope.get("root_path", ""))) :]
    return rest == "/api" or rest.startswith("/api/")


def local_target(path: str, base: str, query: str) -> str:
    """A redirect target that stays on the dashboard: ``path`` (a decoded request path) as a
    path under ``base``, with ``query``. Empty, ``.`` and ``..`` segments are resolved
    (never above ``base``), so ``//host`` cannot become a link to another site and ``/..``
    cannot leave the dashboard; the rest is percent-encoded (``\\`` included, which browsers
    would read as ``/``)."""
    rest = path[len(base) :] if path.startswith(base) else "/"
    segments: list[str] = []
    for segment in rest.split("/"):
        if segment == "..":
            segments = segments[:-1]
        elif segment not in ("", "."):
            segments.append(segment)
    tail = "/" if rest.endswith("/") and segments else ""
    target = quote(base, safe=_PATH_SAFE) + "/" + quote("/".join(segments), safe=_PATH_SAFE) + tail
    return target + (f"?{query}" if query else "")


def nul_in_address(request: Request) -> str | None:
    """Why the request's address cannot name anything (a NUL character), or ``None``."""
    if "\x00" in request.scope.get("path", ""):
        return "The address contains a NUL character (%00): no job id or page has one."
    for key, value in request.query_params.multi_items():
        if "\x00" in key or "\x00" in value:
            return f"The parameter {key!r} contains a NUL character (%00): no job, queue or class has one."
    return None


def _host_name(host_header: str) -> str:
    """``example.com:8642`` -> ``example.com``; ``[::1]:8642`` -> ``::1``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        return host.partition(":")[0]
    return host


def _cookie(name: str, value: str, path: str, secure: bool, max_age: int | None = None) -> bytes:
    parts = [f"{name}={value}", f"Path={path or '/'}", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts).encode("latin-1")


class Guard:
    """ASGI middleware: host check, access token, CSRF cookie and security headers (see the
    module docstring)."""

    def __init__(self, app: ASGIApp, token: str | None = None, allowed_hosts: Iterable[str] | None = None) -> None:
        self.app = app
        self.token = token or None
        self.allowed_hosts = {_host_name(h) for h in allowed_hosts} if allowed_hosts is not None else None
        self.signer = csrf.Signer(self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        base = scope.get("root_path", "")
        scope[_BASE] = base
        as_json = is_api(scope)
        secure = request.url.scheme == "https"

        if self.allowed_hosts is not None and _host_name(request.headers.get("host", "")) not in self.allowed_hosts:
            names = ", ".join(sorted(self.allowed_hosts))
            await _refuse(scope, receive, send, 400, f"This dashboard only answers to {names}", as_json)
            return

        if self.token is not None:
            login = request.query_params.get("token")
            if login is not None and request.method in ("GET", "HEAD"):
                await self._login(scope, receive, send, request, login, base, secure, as_json)
                return
            bearer = request.headers.get("authorization", "")
            if bearer[:7].lower() == "bearer " and self._matches(bearer[7:].strip()):
                scope[csrf.SCOPE_HEADER_AUTH] = True
            elif not self._matches(request.cookies.get(TOKEN_COOKIE, "")):
                await _refuse(
                    scope,
                    receive,
                    send,
                    401,
                    "This dashboard needs its access token: open the login link printed by `onward dashboard` "
                    "(a page address ending in ?token=...), or send the header Authorization: Bearer <token>.",
                    as_json,
                )
                return

        bad_address = nul_in_address(request)
        if bad_address is not None:
            await _refuse(scope, receive, send, 400, bad_address, as_json)
            return

        extra = list(_SECURITY_HEADERS)
        nonce = request.cookies.get(CSRF_COOKIE, "")
        scope[csrf.SCOPE_FROM_COOKIE] = self.signer.well_formed(nonce)
        if not scope[csrf.SCOPE_FROM_COOKIE]:
            nonce = self.signer.new_nonce()
            extra.append((b"set-cookie", _cookie(CSRF_COOKIE, nonce, base, secure)))
        scope[csrf.SCOPE_TOKEN] = self.signer.token(nonce)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _matches(self, given: str) -> bool:
        assert self.token is not None
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    async def _login(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        request: Request,
        given: str,
        base: str,
        secure: bool,
        as_json: bool,
    ) -> None:
        if not self._matches(given):
            await _refuse(scope, receive, send, 401, "Wrong access token in the login link.", as_json)
            return
        query = urlencode([(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "token"])
        target = local_target(scope["path"], base, query)
        headers = [
            (b"location", target.encode("latin-1")),
            (b"set-cookie", _cookie(TOKEN_COOKIE, self.token or "", base, secure, max_age=30 * 86400)),
            (b"cache-control", b"no-store"),
            *(h for h in _SECURITY_HEADERS if h[0] != b"referrer-policy"),
            (b"referrer-policy", b"no-referrer"),  # the address that led here had the token
        ]
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def error_response(as_json: bool, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """An error as the documentation promises it: ``{"error": message}`` for the JSON API, a
    small page otherwise; never cached, with the security headers (for answers that do not
    pass through :class:`Guard`'s own)."""
    extra = {"cache-control": "no-store", **(headers or {})}
    response: Response
    if as_json:
        response = JSONResponse({"error": message}, status_code=status, headers=extra)
    else:
        response = HTMLResponse(_error_page(status, message), status_code=status, headers=extra)
    for name, value in _SECURITY_HEADERS:
        response.headers[name.decode()] = value.decode()
    return response


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str, as_json: bool) -> None:
    await error_response(as_json, status, message)(scope, receive, send)


def _error_page(status: int, message: str) -> str:
    title = {400: "Bad request", 401: "Access token needed", 500: "Something went wrong"}.get(status, "Refused")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Onward: "
        f"{title}</title></head><body><h1>{title}</h1><p>{escape(message)}</p></body></html>"
    )

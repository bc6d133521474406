"""Who may use the dashboard, and how its forms are protected.

:class:`Guard` is an ASGI middleware in front of every dashboard request. It

- checks the ``Host`` header against ``allowed_hosts`` when given (the command passes the
  loopback names when it runs without a token, so a web page cannot reach a local dashboard
  through a DNS name it controls: "DNS rebinding");
- with an access ``token``, lets a request through only when it carries it: an
  ``Authorization: Bearer <token>`` header, or the ``onward_token`` cookie that the login
  link (any page with ``?token=<token>``) sets before redirecting to the same page without it;
- hands every visitor a random CSRF token in the ``onward_csrf`` cookie (double-submit: a
  POST must repeat it in the ``csrf_token`` form field or the ``X-CSRF-Token`` header, which a
  page of another site can neither read nor forge);
- adds headers that keep job data inert: a strict Content-Security-Policy (no inline script,
  no inline style), ``nosniff``, no framing, no referrer (the login link never leaks).

Requests authenticated by the ``Authorization`` header need no CSRF token: browsers never
add that header to a request another site makes.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
from collections.abc import Iterable, Sequence
from html import escape
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "LOOPBACK_HOSTS",
    "TOKEN_COOKIE",
    "TOKEN_ENV_VAR",
    "Guard",
    "base_path",
    "csrf_ok",
    "csrf_token",
    "is_loopback",
]

TOKEN_ENV_VAR = "ONWARD_DASHBOARD_TOKEN"
TOKEN_COOKIE = "onward_token"
CSRF_COOKIE = "onward_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
#: Host names that reach only this machine (the ``Host`` header values a loopback-only
#: dashboard accepts).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

# Keys this middleware leaves in the ASGI scope for the endpoints.
_BASE = "onward.base"
_CSRF = "onward.csrf"
_HEADER_AUTH = "onward.header_auth"

_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
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
    token: str = request.scope.get(_CSRF, "")
    return token


async def csrf_ok(request: Request) -> bool:
    """Whether a POST may change something: it repeats the visitor's CSRF cookie in the
    form field or header, or it was authenticated by the ``Authorization`` header."""
    if request.scope.get(_HEADER_AUTH):
        return True
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else ""
    return bool(cookie) and bool(sent) and hmac.compare_digest(cookie.encode(), sent.encode())


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        base = scope.get("root_path", "")
        scope[_BASE] = base
        is_api = request.url.path[len(base) :].startswith("/api/")
        secure = request.url.scheme == "https"

        if self.allowed_hosts is not None and _host_name(request.headers.get("host", "")) not in self.allowed_hosts:
            await _refuse(send, 400, "This dashboard only answers to " + ", ".join(sorted(self.allowed_hosts)), is_api)
            return

        if self.token is not None:
            login = request.query_params.get("token")
            if login is not None and request.method in ("GET", "HEAD"):
                await self._login(scope, request, login, base, secure, is_api, send)
                return
            bearer = request.headers.get("authorization", "")
            if bearer[:7].lower() == "bearer " and self._matches(bearer[7:].strip()):
                scope[_HEADER_AUTH] = True
            elif not self._matches(request.cookies.get(TOKEN_COOKIE, "")):
                await _refuse(
                    send,
                    401,
                    "This dashboard needs its access token: open the login link printed by `onward dashboard` "
                    "(a page address ending in ?token=...), or send the header Authorization: Bearer <token>.",
                    is_api,
                )
                return

        extra = list(_SECURITY_HEADERS)
        csrf = request.cookies.get(CSRF_COOKIE, "")
        if not (20 <= len(csrf) <= 100 and csrf.replace("-", "").replace("_", "").isalnum()):
            csrf = secrets.token_urlsafe(32)
            extra.append((b"set-cookie", _cookie(CSRF_COOKIE, csrf, base, secure)))
        scope[_CSRF] = csrf

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _matches(self, given: str) -> bool:
        assert self.token is not None
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    async def _login(
        self, scope: Scope, request: Request, given: str, base: str, secure: bool, is_api: bool, send: Send
    ) -> None:
        if not self._matches(given):
            await _refuse(send, 401, "Wrong access token in the login link.", is_api)
            return
        query = urlencode([(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "token"])
        target = request.url.path + (f"?{query}" if query else "")
        headers = [
            (b"location", target.encode("latin-1")),
            (b"set-cookie", _cookie(TOKEN_COOKIE, self.token or "", base, secure, max_age=30 * 86400)),
            (b"cache-control", b"no-store"),
            *_SECURITY_HEADERS,
        ]
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


async def _refuse(send: Send, status: int, message: str, as_json: bool) -> None:
    if as_json:
        body = json.dumps({"error": message}).encode()
        content_type = b"application/json"
    else:
        body = _refusal_page(status, message).encode()
        content_type = b"text/html; charset=utf-8"
    headers: Sequence[tuple[bytes, bytes]] = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *_SECURITY_HEADERS,
    ]
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})


def _refusal_page(status: int, message: str) -> str:
    title = "Access token needed" if status == 401 else "Refused"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Onward: "
        f"{title}</title></head><body><h1>{title}</h1><p>{escape(message)}</p></body></html>"
    )

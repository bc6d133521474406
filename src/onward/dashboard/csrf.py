"""How the dashboard tells its own forms from requests another site makes (CSRF).

A POST that changes a job must pass two checks:

- **Where it comes from.** Browsers say where a request comes from. A POST whose ``Origin``
  header names another origin (another host, another port, another scheme, or ``null``) is
  refused, and so is one whose ``Sec-Fetch-Site`` header is ``cross-site`` or ``same-site``:
  a page on another port of the same host is "same-site", yet it is not the dashboard.
  Requests without these headers (older browsers, scripts) go on to the token check.
- **A token only the dashboard can write.** Each browser gets a random nonce in the
  ``onward_csrf`` cookie; the token the dashboard puts in its forms is an HMAC of that nonce
  under a secret of the server: a random secret made when the app is created, or, when the
  dashboard has an access token, a key derived from it (so every process serving the same
  dashboard accepts the same forms). A page that plants a cookie of its own choosing (any
  page of the same host can, since cookies do not tell ports apart) still cannot compute the
  token that goes with it, and the token never leaves the dashboard's own pages and its
  ``/api/csrf`` answer, which other sites cannot read.

Requests authenticated by the ``Authorization`` header need no token (browsers never add
that header to a request another site makes), but they are held to the first check too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "NOT_FROM_HERE",
    "NO_TOKEN",
    "Signer",
    "foreign_origin",
    "refusal",
]

CSRF_COOKIE = "onward_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

# Keys the guard leaves in the ASGI scope for the endpoints.
SCOPE_TOKEN = "onward.csrf"
SCOPE_FROM_COOKIE = "onward.csrf_from_cookie"
SCOPE_HEADER_AUTH = "onward.header_auth"

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_FOREIGN_SITES = ("cross-site", "same-site")
_NONCE = re.compile(r"[A-Za-z0-9_-]{20,100}")

NOT_FROM_HERE = "it was sent by another site"
NO_TOKEN = "its CSRF token is missing or stale"


class Signer:
    """Makes browser nonces and the form tokens that go with them."""

    def __init__(self, access_token: str | None = None) -> None:
        if access_token:
            self._key = hmac.new(access_token.encode(), b"onward dashboard csrf", hashlib.sha256).digest()
        else:
            self._key = secrets.token_bytes(32)

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def well_formed(nonce: str) -> bool:
        """Whether ``nonce`` looks like one this class makes (else the browser gets a new one)."""
        return _NONCE.fullmatch(nonce) is not None

    def token(self, nonce: str) -> str:
        """The form token for the browser holding ``nonce``."""
        mac = hmac.new(self._key, nonce.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def foreign_origin(request: Request) -> str | None:
    """Why ``request`` comes from another origin than the dashboard's own, or ``None``."""
    site = request.headers.get("sec-fetch-site", "").strip().lower()
    if site in _FOREIGN_SITES:
        return f"{NOT_FROM_HERE} (Sec-Fetch-Site: {site})"
    origin = request.headers.get("origin")
    if origin is not None and not _is_own_origin(origin.strip(), request):
        return f"{NOT_FROM_HERE} (Origin: {origin[:100]})"
    return None


def _is_own_origin(origin: str, request: Request) -> bool:
    """``origin`` is the dashboard's: the same host and port as the ``Host`` header, and the
    request's scheme (or ``https`` for a request that a TLS-terminating proxy passed on over
    plain HTTP)."""
    if origin == "null":
        return False
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    own_scheme = request.url.scheme.lower()
    if scheme != own_scheme and not (scheme == "https" and own_scheme == "http"):
        return False
    host = request.headers.get("host", "").strip().lower()
    if parts.path or parts.query or parts.fragment or not host:
        return False
    return parts.netloc.lower() == host


async def refusal(request: Request) -> str | None:
    """Why a POST to an action must be refused (for the error message), or ``None``."""
    foreign = foreign_origin(request)
    if foreign is not None:
        return foreign
    if request.scope.get(SCOPE_HEADER_AUTH):
        return None
    expected: str = request.scope.get(SCOPE_TOKEN, "")
    if not expected or not request.scope.get(SCOPE_FROM_COOKIE):
        return NO_TOKEN
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.headers.get("content-type", "").startswith(_FORM_TYPES):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else ""
    if not sent or not hmac.compare_digest(expected.encode(), sent.encode(errors="replace")):
        return NO_TOKEN
    return None

"""``onward dashboard``: serve the web dashboard (needs ``pip install 'onward[dashboard]'``)."""

from __future__ import annotations

import secrets

import click

from onward.cli.base import database_url_option, main, open_store

TOKEN_ENV_VAR = "ONWARD_DASHBOARD_TOKEN"
DEFAULT_PORT = 8642


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    if shown in ("0.0.0.0", "[::]"):
        shown = "127.0.0.1" if shown == "0.0.0.0" else "[::1]"
    return f"http://{shown}:{port}/"


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True, help="Port.")
@click.option(
    "--token",
    envvar=TOKEN_ENV_VAR,
    default=None,
    help=f"Access token every request must carry (default: ${TOKEN_ENV_VAR}). "
    "Required on any address other than a loopback one.",
)
@database_url_option
def dashboard(host: str, port: int, token: str | None, database_url: str | None) -> None:
    """Serve the web dashboard: every job, its steps and its chain, live.

    It listens on 127.0.0.1 by default, reachable from this machine only. To listen on
    another address, give an access token (--token or $ONWARD_DASHBOARD_TOKEN) and open the
    login link it prints; scripts send the header "Authorization: Bearer <token>".
    """
    try:
        import uvicorn

        from onward.dashboard import create_app
        from onward.dashboard.security import LOOPBACK_HOSTS, is_loopback
    except ImportError as exc:
        raise click.ClickException(
            f"the dashboard needs its extra ({exc.name or exc} is missing): pip install 'onward[dashboard]'"
        ) from exc

    token = token.strip() if token else None
    if not token and not is_loopback(host):
        raise click.UsageError(
            f"refusing to serve the dashboard on {host} without an access token: anyone who can reach it could "
            f"retry and discard jobs. Give --token or set {TOKEN_ENV_VAR} (e.g. {TOKEN_ENV_VAR}="
            f"{secrets.token_urlsafe(24)}), or listen on 127.0.0.1."
        )
    store = open_store(database_url, must_exist=True)
    # Without a token only this machine's names are answered, so a web page cannot reach the
    # dashboard through a DNS name of its own that points at 127.0.0.1 (DNS rebinding).
    app = create_app(store, token=token, allowed_hosts=None if token else (*LOOPBACK_HOSTS, host))
    url = _url(host, port)
    click.echo(f"Onward dashboard for {store.url}")
    if token:
        click.echo(f"Open {url}?token={token} to log in (the link sets a cookie).")
    else:
        click.echo(f"Open {url}")
    try:
        # No access log: the login link carries the token in its query string.
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        store.close()

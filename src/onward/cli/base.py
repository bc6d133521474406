"""The command group and what every command shares: the store option and import path."""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING

import click

from onward import connecting
from onward.errors import ConfigurationError

if TYPE_CHECKING:
    from onward.stores.base import Store


@click.group()
@click.version_option(package_name="onward")
def main() -> None:
    """Onward: durable background jobs with continuations and resumable steps."""


database_url_option = click.option(
    "--database-url",
    envvar=connecting.ENV_VAR,
    default=None,
    help=f"Store URL (default: ${connecting.ENV_VAR}, else {connecting.DEFAULT_URL}).",
)


def open_store(url: str | None, *, must_exist: bool = False) -> Store:
    """Connect to ``url`` (as ``onward.connect``), turning a bad URL into a one-line error.
    With ``must_exist``, a SQLite file that does not exist is reported, not created."""
    try:
        store = connecting.open_store(url, must_exist=must_exist)
        connecting.set_default(store)
        return store
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc


def import_modules(modules: tuple[str, ...]) -> None:
    """Import job modules; the current directory is on the import path."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise click.ClickException(f"--import {name}: {type(exc).__name__}: {exc}") from exc

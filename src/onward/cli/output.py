"""What the inspection and steering commands share: the admin facade opened from
``--database-url``, the console, JSON output, and turning user errors into one-line messages.

A user error (unknown job id, bad URL, bad JSON, an action the job's state forbids) ends the
command with ``Error: <one line>`` on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import click
from rich.console import Console

from onward import connecting
from onward.admin import Admin, to_plain
from onward.errors import ConfigurationError, OnwardError

P = ParamSpec("P")
R = TypeVar("R")

#: Width used when output is not a terminal, so piped tables are not cut at 80 columns.
PIPE_WIDTH = 200


def console(stderr: bool = False) -> Console:
    """A rich console on the current ``sys.stdout`` (so tests capture it). Not a terminal
    (a pipe, a file): no colours, no live display, wide enough for full job ids."""
    stream = sys.stderr if stderr else sys.stdout
    out = Console(file=stream, highlight=False, soft_wrap=False)
    if not out.is_terminal:
        columns = os.environ.get("COLUMNS")
        out = Console(
            file=stream,
            highlight=False,
            width=int(columns) if columns and columns.isdigit() else PIPE_WIDTH,
            no_color=True,
            force_terminal=False,
        )
    return out


def one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Report Onward errors and invalid input as ``Error: <message>`` (exit 1), and end
    quietly on Ctrl-C."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (OnwardError, ValueError) as exc:
            raise click.ClickException(one_line(exc)) from None
        except KeyboardInterrupt:
            raise SystemExit(0) from None

    return wrapper


@contextmanager
def admin_for(database_url: str | None, *, create: bool = False) -> Iterator[Admin]:
    """The admin facade over the store at ``database_url`` (as ``onward.connect`` would
    resolve it), closed afterwards. The process-wide default store is left alone. Unless
    ``create``, a SQLite file that does not exist is reported, not created."""
    try:
        store = connecting.open_store(database_url, must_exist=not create)
    except ConfigurationError as exc:
        raise click.ClickException(one_line(exc)) from None
    try:
        yield Admin(store)
    finally:
        store.close()


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON (records and other dataclasses included)."""
    click.echo(json.dumps(to_plain(value), indent=2, ensure_ascii=False))

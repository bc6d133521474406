"""``onward demo``: the seed document's workflows end to end, nothing to install or start."""

from __future__ import annotations

import tempfile
from contextlib import suppress
from pathlib import Path

import click

from onward.cli.base import main
from onward.cli.output import console
from onward.errors import ConfigurationError


@main.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for the demo's store, database and logs (default: a new temporary one).",
)
@click.option("--users", type=click.IntRange(10, 1_000_000), default=3000, show_default=True, help="Users to email.")
@click.option("--rows", type=click.IntRange(10, 1_000_000), default=3000, show_default=True, help="Rows to import.")
@click.option(
    "--database-url",
    default=None,
    help="Run on this store instead (e.g. postgresql://...); default: a fresh SQLite file in the demo directory.",
)
def demo(directory: Path | None, users: int, rows: int, database_url: str | None) -> None:
    """Run continuations, resumable steps and a fan-in end to end on real worker processes.

    A welcome-email chain; a bulk email job whose worker is stopped gracefully (SIGTERM)
    midway and resumed; an import whose worker is killed (SIGKILL) midway and resumed from its
    checkpoint. Ends with a summary checked against the application's own records; exits 1 if
    a check failed.
    """
    from onward.demo.runner import Demo, DemoError

    path = directory if directory is not None else Path(tempfile.mkdtemp(prefix="onward-demo-"))
    try:
        ok = Demo(path, console(), users=users, records=rows, url=database_url).run()
    except (DemoError, ConfigurationError) as exc:
        if directory is None:
            with suppress(OSError):
                path.rmdir()  # only if the demo never got to use it
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    if not ok:
        raise SystemExit(1)

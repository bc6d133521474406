"""The demo's fan-in part: an album's thumbnails as one batch, then ``PublishAlbum`` once they
all succeeded (``on_success``), enqueued by the last thumbnail's commit."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.text import Text

import onward
from onward.admin import Admin
from onward.demo import app, jobs

ALBUM = 7
THUMBNAILS = 12


@dataclass(frozen=True)
class FanIn:
    """What the part did: the batch, and whether it went as promised (with the details)."""

    batch_id: str
    ok: bool
    detail: str


def part_fan_in(console: Console, admin: Admin, app_db: str, alive: Callable[[], None], timeout: float) -> FanIn:
    """Open the batch, wait until its callback ran, and check the application's log."""
    console.rule(f"4. Fan-in: {THUMBNAILS} thumbnails as one batch, then PublishAlbum once")
    batch = onward.batch(description=f"album {ALBUM}")
    with batch:
        jobs.MakeThumbnail.perform_all_later([(ALBUM, image) for image in range(1, THUMBNAILS + 1)])
        batch.on_success(jobs.PublishAlbum, ALBUM)
    console.print(f"  onward.batch('album {ALBUM}'): {THUMBNAILS} MakeThumbnail members -> batch {batch.id}")
    console.print("  batch.on_success(PublishAlbum, 7): enqueued by the commit of the last thumbnail")
    deadline = time.monotonic() + timeout
    shown = -1
    while True:
        view = admin.batch(batch.id)
        record = view.record
        if record.total - record.pending != shown:
            shown = record.total - record.pending
            console.print(f"  {shown}/{record.total} thumbnails done", style="dim")
        if view.callbacks and all(c.state == "succeeded" for c in view.callbacks):
            break
        if record.failed or record.discarded or time.monotonic() > deadline:
            return FanIn(batch.id, False, f"the batch did not succeed: {record}")
        alive()
        time.sleep(0.1)
    published = app.events(app_db, "album-published")
    ok = record.state == "succeeded" and len(view.callbacks) == 1 and published == [f"{ALBUM}: {THUMBNAILS} thumbnails"]
    console.print(Text(f"  ✓ PublishAlbum ran after the {THUMBNAILS} thumbnails: {published}", style="green"))
    detail = f"{record.succeeded}/{record.total} thumbnails, then PublishAlbum {len(published)} time(s)"
    return FanIn(batch.id, ok, detail)

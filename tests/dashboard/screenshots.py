"""Take the dashboard screenshots of the docs: ``python tests/dashboard/screenshots.py docs/img``.

Fills a temporary SQLite store with an hour of a small shop's jobs (finished in the past
through a second connection whose clock runs behind), holds two stepped jobs part-way in a
worker thread, serves the dashboard, and saves the overview, the jobs list and a running
job's page with headless Chromium (``/usr/bin/chromium``).
"""

from __future__ import annotations

import math
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import shop  # noqa: E402
from dashboard_helpers import LiveServer, wait_for  # noqa: E402

from onward import stores  # noqa: E402
from onward.dashboard import create_app  # noqa: E402
from onward.stores.sqlite import SQLiteStore  # noqa: E402
from onward.testing import drain  # noqa: E402
from onward.worker import Worker  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def history(url: str) -> None:
    """An hour of finished jobs: each minute's jobs run by a store whose clock is behind."""
    rng = random.Random(7)
    for minutes_ago in range(59, 0, -1):
        behind = minutes_ago * 60 - rng.uniform(5, 50)
        past = SQLiteStore(url, clock=lambda behind=behind: time.time() - behind)
        previous = stores.set_default(past)
        try:
            busy = 9 + 6 * math.sin(minutes_ago / 7) + rng.randint(0, 5)
            for i in range(int(busy)):
                order = 10_000 + minutes_ago * 100 + i
                shop.GenerateInvoice.perform_later(order)
                if i % 3 == 0:
                    shop.SendWelcomeEmail.perform_later(order)
            if minutes_ago % 11 == 4:
                shop.ChargeCard.perform_later(minutes_ago, "19.90", decline=True)
            drain(store=past)
        finally:
            stores.set_default(previous)
            past.close()


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="onward-screens-"))
    url = f"sqlite:///{folder / 'shop.sqlite3'}"
    store = stores.connect(url)
    history(url)

    # Now: a backlog, a failure to look at, and two long jobs running.
    for user in range(12):
        shop.SendWelcomeEmail.set(wait=300 + user).perform_later(5000 + user)
    shop.ChargeCard.perform_later(48213, "129.00", decline=True)
    drain(queues=["payments"])
    upload = shop.UploadReceived.perform_later("customers-2026-11.csv", 48_000)
    drain(queues=["uploads"])
    resize = shop.ResizeImages.perform_later("spring-collection", 1_800, hold_at=0.35)

    worker = Worker(queues=["imports", "media"], concurrency=2, store=store, poll_interval=0.1)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    importer = store.get(upload.id).children[0]
    for job_id in (importer, resize.id):
        wait_for(lambda job_id=job_id: shop.HELD.get(job_id) and shop.HELD[job_id].is_set(), f"job {job_id}", 60)
    time.sleep(2.5)  # let the running jobs' rate and ETA settle to something readable

    server = LiveServer(create_app(store))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 900}, device_scale_factor=1)
            page.goto(server.url + "/")
            page.screenshot(path=str(out / "dashboard.png"), full_page=True)
            page.goto(server.url + "/jobs")
            page.screenshot(path=str(out / "dashboard-jobs.png"))
            page.goto(f"{server.url}/jobs/{importer}")
            page.screenshot(path=str(out / "dashboard-job.png"), full_page=True)
            browser.close()
    finally:
        server.stop()
        shop.RELEASE.set()
        worker.stop()
        thread.join(10)
        store.close()
    print(f"saved dashboard.png, dashboard-jobs.png and dashboard-job.png in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"))

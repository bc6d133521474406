"""API §10: ticks are computed in the schedule's zone, through the spring-forward and fall-back
days of a European and an American zone, walked with ``run_schedules`` on each store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import onward
from jobs_schedules import Tick
from onward import Store
from onward.testing import drain, run_schedules
from onward.ticks import TickRule

PARIS = ZoneInfo("Europe/Paris")  # 2024: +1 -> +2 on 31 March at 02:00; +2 -> +1 on 27 October at 03:00
NEW_YORK = ZoneInfo("America/New_York")  # 2024: -5 -> -4 on 10 March at 02:00; -4 -> -5 on 3 November at 02:00


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def walk(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    at = start
    while at <= end:
        yield at
        at += step


def ticks_while_walking(start: datetime, end: datetime, step: timedelta = timedelta(minutes=10)) -> list[datetime]:
    """``run_schedules`` every ``step`` from ``start`` to ``end``, running the jobs as they
    come (so none is still enqueued at the next tick): the ticks enqueued, in order."""
    found = []
    for at in walk(start, end, step):
        handles = run_schedules(at)
        if handles:
            drain()
        for handle in handles:
            record = handle.refresh()
            assert record.state == "succeeded"
            assert record.scheduled_for is not None
            assert record.scheduled_for <= at
            assert record.result == record.scheduled_for.isoformat()  # what the job saw as self.scheduled_for
            found.append(record.scheduled_for)
    return found


# -- the tick rule alone ----------------------------------------------------------------------


def test_a_time_the_clocks_skip_ticks_once_at_the_instant_they_jump() -> None:
    paris = TickRule(cron="30 2 * * *", zone=PARIS)
    # 30 March 02:30 CET, then 31 March: 02:30 does not exist -> 03:00 CEST (01:00 UTC), then 1 April 02:30 CEST.
    assert paris.next_after(utc(2024, 3, 30, 0).timestamp()) == utc(2024, 3, 30, 1, 30).timestamp()
    assert paris.next_after(utc(2024, 3, 30, 2).timestamp()) == utc(2024, 3, 31, 1, 0).timestamp()
    assert paris.next_after(utc(2024, 3, 31, 1, 0).timestamp()) == utc(2024, 4, 1, 0, 30).timestamp()
    new_york = TickRule(cron="*/20 2 * * *", zone=NEW_YORK)  # 02:00, 02:20, 02:40 all skipped on 10 March
    ticks = new_york.recent(utc(2024, 3, 9, 12).timestamp(), utc(2024, 3, 11, 12).timestamp(), 100)
    assert [datetime.fromtimestamp(t, UTC) for t in ticks] == [
        utc(2024, 3, 10, 7, 0),  # 03:00 EDT: the three skipped times tick once, when the clocks jump
        utc(2024, 3, 11, 6, 0),  # 02:00 EDT
        utc(2024, 3, 11, 6, 20),
        utc(2024, 3, 11, 6, 40),
    ]


def test_a_time_that_occurs_twice_ticks_once_at_its_first_occurrence() -> None:
    paris = TickRule(cron="30 2 * * *", zone=PARIS)
    assert paris.next_after(utc(2024, 10, 26, 12).timestamp()) == utc(2024, 10, 27, 0, 30).timestamp()  # CEST
    assert paris.next_after(utc(2024, 10, 27, 0, 30).timestamp()) == utc(2024, 10, 28, 1, 30).timestamp()
    # Asked from inside the repeated hour (02:10 CET, the second 02:10): the 02:30 of today already ticked.
    assert paris.next_after(utc(2024, 10, 27, 1, 10).timestamp()) == utc(2024, 10, 28, 1, 30).timestamp()
    new_york = TickRule(cron="30 1 * * *", zone=NEW_YORK)
    assert new_york.next_after(utc(2024, 11, 2, 12).timestamp()) == utc(2024, 11, 3, 5, 30).timestamp()  # EDT
    assert new_york.next_after(utc(2024, 11, 3, 5, 30).timestamp()) == utc(2024, 11, 4, 6, 30).timestamp()


def test_every_ticks_on_the_epoch_grid_whatever_the_zone() -> None:
    rule = TickRule(every_us=3_600_000_000, zone=PARIS)
    ticks = rule.recent(utc(2024, 3, 30, 22, 30).timestamp(), utc(2024, 3, 31, 3, 0).timestamp(), 100)
    assert [datetime.fromtimestamp(t, UTC).hour for t in ticks] == [23, 0, 1, 2, 3]
    assert rule.recent(0.0, utc(2024, 1, 1).timestamp(), 3) == [
        utc(2023, 12, 31, 22).timestamp(),
        utc(2023, 12, 31, 23).timestamp(),
        utc(2024, 1, 1).timestamp(),
    ]


# -- through run_schedules, on each store -----------------------------------------------------


def test_paris_spring_forward_day_through_run_schedules(store: Store) -> None:
    onward.schedule("paris-0230", Tick, cron="30 2 * * *", timezone="Europe/Paris")
    found = ticks_while_walking(utc(2024, 3, 29, 12), utc(2024, 4, 1, 12))
    assert found == [utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1, 0), utc(2024, 4, 1, 0, 30)]


def test_paris_spring_forward_day_has_23_hourly_ticks(store: Store) -> None:
    onward.schedule("paris-hourly", Tick, cron="0 * * * *", timezone="Europe/Paris", missed="all", overlap=True)
    run_schedules(utc(2024, 3, 30, 22, 59))  # first seen: 23:59 CET on the 30th
    handles = run_schedules(utc(2024, 3, 31, 21, 59))  # 23:59 CEST on the 31st
    ticks = [h.refresh().scheduled_for for h in handles]
    assert len(ticks) == 23
    assert ticks[:3] == [utc(2024, 3, 30, 23), utc(2024, 3, 31, 0), utc(2024, 3, 31, 1)]  # 00:00, 01:00, 03:00 local
    assert ticks[-1] == utc(2024, 3, 31, 21)
    assert [h.refresh().result for h in handles] == [None] * 23  # not run yet
    assert len(set(ticks)) == 23


def test_paris_fall_back_day_through_run_schedules(store: Store) -> None:
    onward.schedule("paris-0230", Tick, cron="30 2 * * *", timezone="Europe/Paris")
    found = ticks_while_walking(utc(2024, 10, 26, 12), utc(2024, 10, 28, 12))
    assert found == [utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)]  # 02:30 CEST once, then 02:30 CET


def test_paris_fall_back_day_has_24_hourly_ticks_over_25_hours(store: Store) -> None:
    onward.schedule("paris-hourly", Tick, cron="0 * * * *", timezone="Europe/Paris", missed="all", overlap=True)
    run_schedules(utc(2024, 10, 26, 21, 59))  # 23:59 CEST on the 26th
    ticks = [h.refresh().scheduled_for for h in run_schedules(utc(2024, 10, 27, 22, 59))]  # 23:59 CET
    assert len(ticks) == 24
    # 02:00 CEST (00:00 UTC) ticks; the second 02:00 (CET, 01:00 UTC) does not; 03:00 CET (02:00 UTC) does.
    assert utc(2024, 10, 27, 0) in ticks
    assert utc(2024, 10, 27, 1) not in ticks
    assert utc(2024, 10, 27, 2) in ticks


def test_new_york_spring_forward_day_through_run_schedules(store: Store) -> None:
    onward.schedule("ny-0230", Tick, cron="30 2 * * *", timezone="America/New_York")
    found = ticks_while_walking(utc(2024, 3, 9, 0), utc(2024, 3, 11, 12))
    assert found == [utc(2024, 3, 9, 7, 30), utc(2024, 3, 10, 7, 0), utc(2024, 3, 11, 6, 30)]


def test_new_york_fall_back_day_through_run_schedules(store: Store) -> None:
    onward.schedule("ny-0130", Tick, cron="30 1 * * *", timezone="America/New_York")
    onward.schedule("ny-every-15", Tick, cron="*/15 1 * * *", timezone="America/New_York", missed="all", overlap=True)
    found = ticks_while_walking(utc(2024, 11, 2, 12), utc(2024, 11, 4, 12), step=timedelta(minutes=5))
    once = [t for t in found if t.minute == 30 and t.day in (3, 4)]
    # 01:30 EDT (05:30 UTC) on the 3rd, once; the second 01:30 (EST, 06:30 UTC) does not tick.
    assert utc(2024, 11, 3, 5, 30) in once
    assert utc(2024, 11, 3, 6, 30) not in found
    assert utc(2024, 11, 4, 6, 30) in once
    third = sorted(t for t in found if t.day == 3)
    # The */15 schedule ticks 01:00, 01:15, 01:30, 01:45 EDT once each (the 01:30 one shared by both schedules).
    assert third == sorted([utc(2024, 11, 3, 5, m) for m in (0, 15, 30, 45)] + [utc(2024, 11, 3, 5, 30)])


def test_jobs_see_their_tick_as_an_aware_utc_datetime(store: Store) -> None:
    onward.schedule("paris-0230", Tick, cron="30 2 * * *", timezone="Europe/Paris")
    run_schedules(utc(2024, 3, 30, 12))
    [handle] = run_schedules(utc(2024, 3, 31, 1, 0, 0))
    assert drain() == 1
    record = handle.refresh()
    assert record.result == "2024-03-31T01:00:00+00:00"
    assert record.scheduled_for == utc(2024, 3, 31, 1)
    assert record.scheduled_for.tzinfo is not None
    assert record.schedule_key == "paris-0230"

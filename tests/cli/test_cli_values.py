"""The command line with values out of range: rows holding times no API call could store
are listed, shown and discarded; overflowing options get a clear message, not a traceback."""

from __future__ import annotations

from collections.abc import Callable

from cli_jobs import Greet
from click.testing import Result

import rawsql
from onward import Store

Invoke = Callable[..., Result]


def test_jobs_show_and_discard_survive_a_row_with_times_out_of_range(store: Store, onward_cli: Invoke) -> None:
    job_id = Greet.perform_later("x").id
    rawsql.poison_times(store, job_id)
    listed = onward_cli("jobs")
    assert listed.exit_code == 0, listed.output
    assert job_id in listed.output
    for args in (("jobs", "--json"), ("show", job_id), ("show", job_id, "--json"), ("stats",)):
        result = onward_cli(*args)
        assert result.exit_code == 0, (args, result.output)
    assert "9999-12-30" in onward_cli("show", job_id).output
    discarded = onward_cli("discard", job_id)
    assert discarded.exit_code == 0, discarded.output
    assert "is discarded" in discarded.output

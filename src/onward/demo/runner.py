"""Runs the demo: real worker processes on an embedded SQLite store, a graceful stop and a
crash in the middle of stepped jobs, and a summary checked against the application's log.

1. Continuations: ``SendWelcomeEmail`` for a new user; its success enqueues
   ``SendOnboardingTips`` (after a short wait) and ``NotifyAdmin``; the tips enqueue
   ``TrackSignupMetrics``.
2. Steps, graceful stop: ``BulkWelcomeEmail`` to every user; the worker gets SIGTERM midway,
   saves the cursor and exits; a new worker resumes exactly there (no email sent twice).
3. Steps, crash: ``ProcessImport``; the worker gets SIGKILL midway; once its lease expires a
   new worker resumes from the last checkpoint, repeating at most the rows of one checkpoint
   interval plus the one in flight.
4. Fan-in: an album's ``MakeThumbnail`` jobs as one batch; ``PublishAlbum``, its
   ``on_success`` callback, runs once, after the last thumbnail (see ``onward.demo.fan_in``).

All along, every worker runs the schedule ``demo-heartbeat`` (a ``Heartbeat`` job every
2 seconds): the summary checks that each tick enqueued exactly one job, across the stop, the
crash and the three workers.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from onward import admin_text, connecting
from onward.admin import Admin, JobDetail, StepProgress, TreeNode, format_duration
from onward.cli import render
from onward.demo import app, jobs
from onward.demo.fan_in import FanIn, part_fan_in
from onward.demo.view import StepsView

POLL = 0.1
LEASE_TIMEOUT = 5.0  # short, so the crash part does not wait long; long enough for a loaded machine
TIPS_WAIT = 3.0
STOP_AT = 0.35  # fraction of the bulk send at which the worker gets SIGTERM
KILL_AT = 0.40  # fraction of the import at which the worker gets SIGKILL
PART_TIMEOUT = 120.0


class DemoError(Exception):
    """The demo could not go on (a worker died unexpectedly, a job failed, a timeout)."""


@dataclass
class Check:
    what: str
    ok: bool
    detail: str


@dataclass
class WorkerProcess:
    """An ``onward worker`` subprocess writing its log to a file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout)
        self.log.close()
        return code

    def log_lines(self, event: str) -> list[str]:
        """This worker's log lines for a job event (``interrupted``, ``resumed``...)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return [line for line in text.splitlines() if f" {event}" in line]

    def tail(self, lines: int = 5) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Demo:
    """One run of the demo in ``directory`` (its store, application database and logs)."""

    directory: Path
    console: Console
    users: int = 3000
    records: int = 3000
    url: str | None = None  # a store to use instead of a fresh SQLite file in ``directory``
    checks: list[Check] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.directory = self.directory.resolve()
        self.app_db = str(self.directory / "app.sqlite3")
        self.fresh_store = self.url is None
        if self.url is None:
            self.url = f"sqlite:///{self.directory / 'onward.sqlite3'}"
        self.store_url: str = self.url
        self.job_ids: list[str] = []  # the jobs this run created (the store may hold others)

    # -- running ------------------------------------------------------------------------------
    def run(self) -> bool:
        """Run every part and print the summary; True when every check passed."""
        started = time.monotonic()
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.fresh_store:
            for name in ("onward.sqlite3", "onward.sqlite3-wal", "onward.sqlite3-shm"):
                (self.directory / name).unlink(missing_ok=True)
        store = connecting.open_store(self.store_url)  # a bad URL stops here, before anything else
        previous = connecting.set_default(store)
        self.admin = Admin(store)
        try:
            self._prepare()
            chain_root = self.part_chain()
            bulk = self.part_graceful_stop()
            imported = self.part_crash()
            self.fan_in = self.part_fan_in()
            self.summary(chain_root, bulk, imported, time.monotonic() - started)
        finally:
            for worker in self.workers:
                worker.signal(signal.SIGTERM)
            for worker in self.workers:
                try:
                    worker.wait(15)
                except subprocess.TimeoutExpired:
                    worker.process.kill()
                    worker.wait(5)
            connecting.set_default(previous)
            store.close()
        return all(c.ok for c in self.checks)

    def _prepare(self) -> None:
        for old in self.directory.glob("worker-*.log"):
            old.unlink()
        app.create(self.app_db, self.users, self.records)
        os.environ[app.ENV_VAR] = self.app_db
        out = self.console
        out.print(Text("Onward demo: continuations, resumable steps and a fan-in", style="bold"))
        out.print(f"Store:        {connecting.mask_url(self.store_url)}")
        out.print(f"Application:  {self.app_db} ({self.users:,} users, an import of {self.records:,} rows)")
        out.print(f"Worker logs:  {self.directory}/worker-*.log")
        out.print(f"Schedule:     demo-heartbeat enqueues Heartbeat every {jobs.HEARTBEAT_EVERY} s, on every worker")

    def start_worker(self, name: str) -> WorkerProcess:
        log_path = self.directory / f"worker-{name}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - closed by WorkerProcess.wait
        env = dict(os.environ)
        env[app.ENV_VAR] = self.app_db
        env[jobs.TIPS_WAIT_VAR] = str(TIPS_WAIT)
        env["PYTHONUNBUFFERED"] = "1"
        command = [sys.executable, "-m", "onward", "worker", "--import", "onward.demo.jobs"]
        command += ["--database-url", self.store_url, "--concurrency", "2", "--lease-timeout", str(LEASE_TIMEOUT)]
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.directory)
        worker = WorkerProcess(name, process, log_path, log)
        self.workers.append(worker)
        self.console.print(Text(f"  ▶ worker {name} started (pid {process.pid})", style="dim"))
        return worker

    def follow(
        self, job_id: str, until: Callable[[JobDetail], bool], view: StepsView | None, worker: WorkerProcess | None
    ) -> JobDetail:
        """Poll the job (updating ``view``) until ``until`` holds; fail if it cannot."""
        deadline = time.monotonic() + PART_TIMEOUT
        while True:
            detail = self.admin.job(job_id)
            if view is not None:
                view.update(detail)
            if until(detail):
                return detail
            if detail.job.state in ("failed", "discarded"):
                raise DemoError(f"{admin_text.class_name(detail.job.job_class)} {detail.job.state}: {detail.job.error}")
            if worker is not None and worker.process.poll() is not None:
                raise DemoError(f"worker {worker.name} exited unexpectedly:\n{worker.tail()}")
            if time.monotonic() > deadline:
                raise DemoError(f"job {job_id} did not get there within {PART_TIMEOUT:.0f} s")
            time.sleep(POLL)

    # -- the parts ----------------------------------------------------------------------------
    def part_chain(self) -> TreeNode:
        out = self.console
        out.rule("1. Continuations: a new user signs up")
        handle = jobs.SendWelcomeEmail.perform_later(1)
        out.print(f"  SendWelcomeEmail.perform_later(1) -> job {handle.id}")
        worker = self.start_worker("A")
        self.worker = worker
        seen: dict[str, str] = {}

        def report(detail: JobDetail) -> bool:
            nodes = _flatten(detail.tree)
            for node in nodes:
                if seen.get(node.id) != node.state:
                    self._chain_event(node, node.id not in seen)
                    seen[node.id] = node.state
            return len(nodes) == 4 and all(n.state == "succeeded" for n in nodes)

        detail = self.follow(handle.id, report, None, worker)
        self.job_ids += [node.id for node in _flatten(detail.tree)]
        out.print(render.chain_tree(detail.tree))
        emails = app.email_tally(self.app_db, "welcome").rows + app.email_tally(self.app_db, "onboarding-tips").rows
        self.checks.append(Check("welcome chain", True, f"4 jobs succeeded in order; {emails} emails sent"))
        return detail.tree

    def _chain_event(self, node: TreeNode, first_seen: bool) -> None:
        name = admin_text.class_name(node.job_class)
        record = self.admin.get(node.id)
        if first_seen or node.state == "enqueued":
            due = record.scheduled_at.timestamp() - record.enqueued_at.timestamp()
            when = f", scheduled {format_duration(due)} later" if due > 0.5 else ""
            parent = (
                f" by {admin_text.class_name(self.admin.get(record.parent_id).job_class)}" if record.parent_id else ""
            )
            self.console.print(f"  + {name} enqueued{parent}{when}")
        if node.state == "succeeded":
            self.console.print(Text(f"  ✓ {name} succeeded", style="green"))
        elif node.state not in ("enqueued", "running"):
            self.console.print(f"  · {name} {node.state}")

    def part_graceful_stop(self) -> JobDetail:
        out = self.console
        out.rule(f"2. Steps: BulkWelcomeEmail to {self.users:,} users, stopped gracefully midway")
        handle = jobs.BulkWelcomeEmail.perform_later("demo-signups")
        out.print(f"  BulkWelcomeEmail.perform_later('demo-signups') -> job {handle.id}")
        with StepsView(out, "BulkWelcomeEmail") as view:
            self.follow(handle.id, lambda d: _fraction(d, "send_emails") >= STOP_AT, view, self.worker)
            view.note(f"  SIGTERM -> worker A (pid {self.worker.process.pid}): stop gracefully", "bold yellow")
            self.worker.signal(signal.SIGTERM)
            code = self.worker.wait(30)
            detail = self.admin.job(handle.id)
            view.update(detail)
            step = _step(detail, "send_emails")
            sent = app.email_tally(self.app_db, "bulk-welcome")
            view.note(
                f"  worker A exited ({code}); job {detail.job.state}, resumptions {detail.job.resumptions}; "
                f"saved cursor: user {step.cursor if step else '?'}; emails sent so far: {sent.rows:,}"
            )
            for line in self.worker.log_lines("interrupted")[-1:]:
                view.note(f"  worker A log: {line}", "dim")
            self.worker = self.start_worker("B")
            detail = self.follow(handle.id, lambda d: d.job.state == "succeeded", view, self.worker)
            for line in self.worker.log_lines("resumed")[:1]:
                view.note(f"  worker B log: {line}", "dim")
            view.note(f"  ✓ resumed and finished; {len(detail.job.children)} continuation enqueued", "green")
        self.follow(detail.job.children[0], lambda d: d.job.state == "succeeded", None, self.worker)
        self.job_ids += [handle.id, detail.job.children[0]]
        tally = app.email_tally(self.app_db, "bulk-welcome")
        self.bulk_tally = tally
        self.checks.append(
            Check(
                "graceful stop: nothing repeated",
                tally.distinct == self.users and tally.duplicates == 0,
                f"{tally.distinct:,}/{self.users:,} users emailed, {tally.duplicates} duplicates (bound: 0)",
            )
        )
        return self.admin.job(handle.id)

    def part_crash(self) -> JobDetail:
        out = self.console
        out.rule(f"3. Steps: ProcessImport of {self.records:,} rows, worker killed (SIGKILL) midway")
        handle = jobs.ProcessImport.perform_later(1)
        self.job_ids.append(handle.id)
        out.print(f"  ProcessImport.perform_later(1) -> job {handle.id}")
        bound = jobs.crash_bound()
        with StepsView(out, "ProcessImport") as view:
            self.follow(handle.id, lambda d: _fraction(d, "process") >= KILL_AT, view, self.worker)
            view.note(f"  SIGKILL -> worker B (pid {self.worker.process.pid}): a crash", "bold red")
            self.worker.signal(signal.SIGKILL)
            self.worker.wait(30)
            detail = self.admin.job(handle.id)
            step = _step(detail, "process")
            saved = int(step.cursor) if step and step.cursor is not None else 1
            done = app.import_tally(self.app_db)
            self.at_risk = max(0, done.rows - (saved - 1))
            view.note(
                f"  checkpoint: row {saved} (rows imported so far: {done.rows:,}); {self.at_risk} row(s) past it "
                f"will run again (bound: {bound}); the job stays 'running' until its {LEASE_TIMEOUT:.0f} s lease"
                " expires"
            )
            self.worker = self.start_worker("C")
            detail = self.follow(handle.id, lambda d: d.job.state == "succeeded", view, self.worker)
            for line in self.worker.log_lines("resumed")[:1]:
                view.note(f"  worker C log: {line}", "dim")
            view.note(f"  ✓ taken back after the lease expired, resumed at row {saved}, finished", "green")
        tally = app.import_tally(self.app_db)
        self.import_tally = tally
        self.checks.append(
            Check(
                "crash: repeats within the bound",
                tally.distinct == self.records and tally.duplicates <= bound,
                f"{tally.distinct:,}/{self.records:,} rows imported, {tally.duplicates} duplicates "
                f"(predicted at the kill: {self.at_risk}; bound: ≤ {bound} = the rows of one "
                f"{jobs.CHECKPOINT_INTERVAL} s checkpoint interval at ≤ {jobs.RATE}/s, + 1 in flight)",
            )
        )
        return detail

    def part_fan_in(self) -> FanIn:
        def alive() -> None:
            if self.worker.process.poll() is not None:
                raise DemoError(f"worker {self.worker.name} exited unexpectedly:\n{self.worker.tail()}")

        done = part_fan_in(self.console, self.admin, self.app_db, alive, PART_TIMEOUT)
        self.checks.append(Check("fan-in: callback once", done.ok, done.detail))
        return done

    # -- summary ------------------------------------------------------------------------------
    def summary(self, chain: TreeNode, bulk: JobDetail, imported: JobDetail, seconds: float) -> None:
        out = self.console
        out.rule("Summary")
        demo_jobs = [self.admin.get(job_id) for job_id in self.job_ids]
        table = Table(header_style="bold", box=None, pad_edge=False)
        for column in ("JOB", "STATE", "ATTEMPTS", "RESUMPTIONS", "TOOK"):
            table.add_column(column)
        for job in demo_jobs:
            table.add_row(
                admin_text.class_name(job.job_class),
                render.state_text(str(job.state)),
                str(job.attempts),
                str(job.resumptions),
                render.took(job),
            )
        out.print(table)
        out.print(Text("\nChain", style="bold"))
        out.print(render.chain_tree(chain))
        all_ok = all(j.state == "succeeded" for j in demo_jobs)
        jobs_line = f"{len(demo_jobs)} jobs, all succeeded" if all_ok else "not every job succeeded"
        self.checks.insert(0, Check("jobs", all_ok, jobs_line))
        resumed = bulk.job.resumptions >= 1 and imported.job.resumptions >= 1
        self.checks.append(self._schedule_check())
        self.checks.append(
            Check(
                "resumed from checkpoints",
                resumed,
                f"BulkWelcomeEmail resumptions {bulk.job.resumptions}, ProcessImport resumptions "
                f"{imported.job.resumptions}",
            )
        )
        out.print()
        for check in self.checks:
            mark = Text("✓ " if check.ok else "✗ ", style="green" if check.ok else "bold red")
            out.print(Text.assemble(mark, (f"{check.what}: ", "bold"), check.detail))
        out.print(f"\nDone in {seconds:.1f} s. The demo's store stays in {self.directory}; look around with:")
        onward = onward_command()
        out.print(f"  export {connecting.ENV_VAR}={connecting.mask_url(self.store_url)}")
        out.print(f"  {onward} jobs")
        out.print(f"  {onward} show {imported.job.id}")
        out.print(f"  {onward} show {self.fan_in.batch_id}")
        out.print(f"  {onward} schedules")
        out.print(f"  {onward} dashboard          # then open http://127.0.0.1:8642")

    def _schedule_check(self) -> Check:
        """Every tick of the demo's schedule enqueued one job: none twice, none missing."""
        ticks = sorted(
            j.scheduled_for.timestamp()
            for j in self.admin.jobs(schedule_key="demo-heartbeat", limit=1000).jobs
            if j.scheduled_for is not None
        )
        recorded = app.events(self.app_db, "heartbeat")
        steps = {round(b - a, 3) for a, b in itertools.pairwise(ticks)}
        ok = len(ticks) >= 2 and steps == {float(jobs.HEARTBEAT_EVERY)} and len(recorded) == len(set(recorded))
        return Check(
            "schedule: each tick once",
            ok,
            f"demo-heartbeat ticked {len(ticks)} times across the workers, each tick one job"
            f" ({len(recorded)} ran, {len(recorded) - len(set(recorded))} twice)",
        )


def onward_command() -> str:
    """How to type ``onward`` here: its name when the shell finds this very program, else its
    path (``.venv/bin/onward`` after ``./dev demo``), else ``python -m onward``."""
    program = sys.argv[0]
    if os.path.basename(program) == "onward" and os.path.exists(program):
        mine = os.path.realpath(program)
        found = shutil.which("onward")
        if found is not None and os.path.realpath(found) == mine:
            return "onward"
        return _shell_path(program)
    return f"{_shell_path(sys.executable)} -m onward"


def _shell_path(path: str) -> str:
    """``path`` relative to the current directory when it is below it, else absolute."""
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else os.path.abspath(path)


def _flatten(node: TreeNode) -> list[TreeNode]:
    out = [node]
    for child in node.children:
        out.extend(_flatten(child))
    return out


def _step(detail: JobDetail, name: str) -> StepProgress | None:
    return next((s for s in detail.steps if s.name == name), None)


def _fraction(detail: JobDetail, name: str) -> float:
    step = _step(detail, name)
    if detail.job.state == "succeeded":
        return 1.0
    return step.fraction or 0.0 if step is not None else 0.0

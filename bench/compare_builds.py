"""Two builds of Onward side by side: is this checkout as fast as an earlier revision?

    python -m bench.compare_builds --base 7fadb87                 # no-op throughput, both stores
    python -m bench.compare_builds --base HEAD~3 --reps 5 --only throughput --store sqlite

Makes a worktree of ``--base`` (a git revision) in a temporary directory, then runs this
checkout's ``python -m bench --only ...`` with the base's ``onward`` and with this checkout's
on the path (``PYTHONPATH=BUILD/src:.``), alternately, ``--reps``
times each (the same machine, interleaved, so that load and thermal drift hit both alike), and
prints the median of every figure and the ratio this checkout / base, paired per repetition.
Durability as in ``bench/suite.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """A detached worktree of ``revision`` in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="onward-build-") as tmp:
        tree = Path(tmp) / "build"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), revision], cwd=ROOT, check=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)


def run_build(build: Path, store: str, only: str) -> dict[str, Any]:
    """Run this checkout's benchmark code with the ``onward`` of ``build``: only Onward differs."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(build / "src"), str(ROOT)]))
        command = [sys.executable, "-m", "bench", "--store", store, "--only", only, "--json-out", out.name]
        subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        document: dict[str, Any] = json.loads(Path(out.name).read_text())
    return document


def rates(document: dict[str, Any]) -> dict[str, float]:
    """``store/figure`` -> jobs per second, for every figure with a rate."""
    found = {}
    for store, figures in document.get("stores", document).items():
        if not isinstance(figures, dict):
            continue
        for name, value in figures.items():
            if isinstance(value, dict) and isinstance(value.get("per_s"), (int, float)):
                found[f"{store}/{name}"] = float(value["per_s"])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="git revision to compare with")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--store", default="all", choices=["sqlite", "postgresql", "all"])
    parser.add_argument("--only", default="throughput,throughput_2_processes")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"base": [], "this": []}
    with checkout(args.base) as base:
        builds = [("base", base), ("this", ROOT)]
        for rep in range(args.reps):
            for name, build in builds if rep % 2 == 0 else builds[::-1]:
                runs[name].append(rates(run_build(build, args.store, args.only)))
                print(f"[compare] rep {rep + 1} {name}: {json.dumps(runs[name][-1])}", file=sys.stderr)
    print(f"| figure (jobs/s) | base {args.base} | this checkout | this / base (paired median) |")
    print("|---|---|---|---|")
    for figure in sorted(runs["this"][0]):
        old = [r[figure] for r in runs["base"] if figure in r]
        new = [r[figure] for r in runs["this"] if figure in r]
        ratios = [n / o for n, o in zip(new, old, strict=False) if o]
        print(
            f"| {figure} | {statistics.median(old):,.0f} | {statistics.median(new):,.0f} |"
            f" {statistics.median(ratios):.3f} ({', '.join(f'{r:.2f}' for r in ratios)}) |"
        )


if __name__ == "__main__":
    main()

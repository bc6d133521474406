"""Summarise a ``run_side_by_side.sh`` result directory: medians over repetitions, then each
Onward figure as a ratio to each peer's (measured in the same session, back to back).

    python bench/peers/ratios.py /tmp/onward-side-by-side/<timestamp>
"""

from __future__ import annotations

import glob
import json
import os
import statistics
import sys
from typing import Any

FIGURES = (
    # key, heading, higher is better
    ("process_per_s", "process jobs/s", True),
    ("enqueue_per_s", "enqueue jobs/s", True),
    ("latency_ms_p50", "latency p50 ms", False),
    ("latency_ms_p90", "latency p90 ms", False),
)


def load(directory: str) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(glob.glob(os.path.join(directory, "rep*", "results.jsonl"))):
        with open(path) as f:
            for line in f:
                if line.startswith("{"):
                    row = json.loads(line)
                    rows.setdefault(row["peer"], []).append(row)
    return rows


def medians(rows: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    out = {}
    for name, runs in rows.items():
        ok = [r for r in runs if "error" not in r]
        if ok:
            out[name] = {key: statistics.median(r[key] for r in ok) for key, _, _ in FIGURES}
            out[name]["runs"] = len(ok)
            out[name]["min_process"] = min(r["process_per_s"] for r in ok)
            out[name]["max_process"] = max(r["process_per_s"] for r in ok)
    return out


def main(directory: str) -> None:
    rows = load(directory)
    med = medians(rows)
    print("### Medians (min-max of processing)\n")
    print("| system | runs | " + " | ".join(h for _, h, _ in FIGURES) + " | processing range |")
    print("|---|---|" + "---|" * len(FIGURES) + "---|")
    for name, m in med.items():
        cells = " | ".join(f"{m[k]:,.1f}" if not k.startswith("latency") else f"{m[k]:.2f}" for k, _, _ in FIGURES)
        print(f"| {name} | {m['runs']:.0f} | {cells} | {m['min_process']:,.0f}-{m['max_process']:,.0f} |")
    failures = [r for runs in rows.values() for r in runs if "error" in r]
    if failures:
        print("\nFailures:")
        for r in failures:
            print(f"- {r['peer']}: {r['error']}")
    onward = [n for n in med if n.startswith("onward")]
    peers = [n for n in med if not n.startswith("onward")]
    for key, heading, higher in FIGURES[:3]:
        word = "Onward ÷ peer (higher is better)" if higher else "peer ÷ Onward (higher is better for Onward)"
        print(f"\n### {heading}: {word}\n")
        print("| Onward | " + " | ".join(peers) + " | best peer |")
        print("|---|" + "---|" * (len(peers) + 1))
        for o in onward:
            cells = []
            for p in peers:
                a, b = med[o][key], med[p][key]
                cells.append(f"{(a / b if higher else b / a):.2f}x")
            best = max(peers, key=lambda p: med[p][key] if higher else -med[p][key])
            a, b = med[o][key], med[best][key]
            cells.append(f"{(a / b if higher else b / a):.2f}x ({best})")
            print(f"| {o} | " + " | ".join(cells) + " |")
    paired(directory, onward, peers)
    print()
    for name, runs in rows.items():
        notes = next((r.get("notes") for r in runs if r.get("notes")), None)
        if notes:
            print(f"- **{name}**: {notes}")


def paired(directory: str, onward: list[str], peers: list[str]) -> None:
    """Within each repetition, Onward's processing rate over the best peer's of that same
    repetition (they ran minutes apart, under the same load); then the median of those."""
    print("\n### processing, paired per repetition: Onward / best peer of the same repetition\n")
    print("| Onward | " + " | ".join(f"rep {i + 1}" for i in range(len(_reps(directory)))) + " | median |")
    print("|---|" + "---|" * (len(_reps(directory)) + 1))
    for o in onward:
        ratios = []
        for rep in _reps(directory):
            ok = {r["peer"]: r for r in rep if "error" not in r}
            best = max((ok[p] for p in peers if p in ok), key=lambda r: r["process_per_s"], default=None)
            if o in ok and best is not None:
                ratios.append((ok[o]["process_per_s"] / best["process_per_s"], best["peer"]))
        cells = [f"{r:.2f}x ({p})" for r, p in ratios]
        med = statistics.median(r for r, _ in ratios) if ratios else float("nan")
        print(f"| {o} | " + " | ".join(cells) + f" | {med:.2f}x |")


def _reps(directory: str) -> list[list[dict[str, Any]]]:
    reps = []
    for path in sorted(glob.glob(os.path.join(directory, "rep*", "results.jsonl"))):
        with open(path) as f:
            reps.append([json.loads(line) for line in f if line.startswith("{")])
    return reps


if __name__ == "__main__":
    main(sys.argv[1])

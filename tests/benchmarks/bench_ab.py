"""Live accuracy benchmark of ``perfgate ab``: blinded A/B runs with injected latency.

Run with ``uv run python tests/benchmarks/bench_ab.py [--trials 3] [--aa-trials 6]
[--cells one:10,all:10,...] [--results FILE] [--seed 1]``; ``--report FILE`` prints the
table of a results file without running anything.

Method
    Each trial builds the throwaway repository of ``perfgate demo`` (two commits of the
    demo service; the second one slowed) and runs the full ``perfgate ab`` on it with the
    demo's profile (40 users, 10 s runs, 2 s warm-up) and the default settings: looks at
    3, 6 and 10 pairs, α = 0.05, margins 5 % (p50) and 10 % (p95). Trials run in a random
    order, and the gate sees only two commits: it is blind to the cell.

    Injected latency δ is relative to the measured latency of the slowed endpoint, not to
    its simulated service time: a calibration run first measures ``p50 / service time`` of
    ``GET /items`` (about 1.4 here), and the demo's knob is set to that ratio times δ.
    Cells: ``one`` (GET /items only), ``all`` (every endpoint, the same knob: GET /items
    by δ, the others by a similar share of their latency), ``tail`` (10 % of GET /items
    requests slowed ten times as much, so that the mean rises by δ; mostly a p95 change).

    A trial counts as REGRESSED when the verdict is REGRESSED (for ``one`` and ``tail``:
    on GET /items; a REGRESSED elsewhere is counted as a false alarm as well).

It prints figures and never asserts; the exit status is 0.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from perfgate.ab import AbRequest, ab_in_repository
from perfgate.config import Overrides, load_config
from perfgate.demo.app import SERVICE_TIMES_MS
from perfgate.demo.walkthrough import DEMO_SLOW_ENDPOINT, make_demo_repo
from perfgate.record import RunRequest, record_run
from perfgate.store import Store
from perfgate.verdict import Outcome

DEFAULT_CELLS = "one:5,one:10,one:20,all:5,all:10,all:20,tail:10"
TAIL_FRACTION = 0.1


def calibrate_ratio(workdir: Path) -> float:
    """Measured p50 of the slowed endpoint over its simulated service time."""
    repo = workdir / "calibration"
    make_demo_repo(repo, slowdown_pct=0.0)
    loaded = load_config(start=repo)
    profile = loaded.resolve(None, Overrides(), served=True)
    with Store(workdir / "calibration.db") as store:
        run = record_run(RunRequest(profile=profile, repo_dir=repo, serve=loaded.serve(), serve_cwd=repo), store)
    endpoint = run.endpoint(DEMO_SLOW_ENDPOINT)
    assert endpoint is not None and endpoint.stats.p50
    return endpoint.stats.p50 / SERVICE_TIMES_MS[DEMO_SLOW_ENDPOINT]


def trial(workdir: Path, mode: str, delta_pct: float, ratio: float, number: int) -> dict:
    repo = workdir / f"trial-{number}"
    knob = ratio * delta_pct
    if mode == "tail":
        make_demo_repo(repo, slowdown_pct=knob, slow_endpoint=DEMO_SLOW_ENDPOINT, tail_fraction=TAIL_FRACTION)
    else:
        make_demo_repo(repo, slowdown_pct=knob, slow_endpoint="" if mode == "all" else DEMO_SLOW_ENDPOINT)
    loaded = load_config(start=repo)
    request = AbRequest(loaded=loaded, settings=loaded.ab_settings(), cwd=repo, base_ref="main",
                        profile=loaded.resolve(None, Overrides(), served=True), serve=loaded.serve())
    started = time.monotonic()
    with Store(workdir / "bench.db") as store:
        result = ab_in_repository(request, store)
    verdict = result.verdict
    regressed = sorted(e.endpoint for e in verdict.endpoints if e.outcome is Outcome.REGRESSED)
    target = next((e for e in verdict.endpoints if e.endpoint == DEMO_SLOW_ENDPOINT), None)
    return {
        "mode": mode if delta_pct else "aa", "delta": delta_pct, "knob_pct": knob,
        "verdict": verdict.outcome.value, "regressed": regressed,
        "target": target.outcome.value if target else None,
        "pairs": verdict.sequential.pairs if verdict.sequential else None,
        "seconds": time.monotonic() - started,
    }


def _hit(row: dict) -> str:
    """The trial's outcome as the cell's target sees it."""
    if row["mode"] == "all":
        return row["verdict"]
    if row["mode"] == "aa":
        return row["verdict"]
    return row["target"] or "invalid"


def report(rows: list[dict]) -> str:
    cells: dict[tuple[str, float], list[dict]] = {}
    for row in rows:
        cells.setdefault((row["mode"], row["delta"]), []).append(row)
    lines = ["| injected | trials | REGRESSED | INCONCLUSIVE | UNCHANGED | other endpoint flagged | median pairs | "
             "median time to verdict |", "|---|---|---|---|---|---|---|---|"]
    order = {"aa": 0, "one": 1, "all": 2, "tail": 3}
    for (mode, delta), group in sorted(cells.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        n = len(group)
        hits = [_hit(r) for r in group]
        share = {k: sum(h == k for h in hits) for k in ("regressed", "inconclusive", "unchanged")}
        stray = sum(any(e != DEMO_SLOW_ENDPOINT for e in r["regressed"]) for r in group if mode != "all")
        label = "A/A (none)" if mode == "aa" else f"+{delta:g} % {dict(one='GET /items', all='all endpoints', tail='tail of GET /items')[mode]}"
        lines.append(
            f"| {label} | {n} | {share['regressed']}/{n} | {share['inconclusive']}/{n} | {share['unchanged']}/{n} | "
            f"{'–' if mode == 'all' else f'{stray}/{n}'} | {statistics.median(r['pairs'] or 0 for r in group):g} | "
            f"{statistics.median(r['seconds'] for r in group) / 60:.1f} min |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=3, help="trials per injected cell")
    parser.add_argument("--aa-trials", type=int, default=6, help="A/A trials")
    parser.add_argument("--cells", default=DEFAULT_CELLS, help=f"mode:delta list (default {DEFAULT_CELLS})")
    parser.add_argument("--results", type=Path, default=None, help="JSON-lines file to append results to")
    parser.add_argument("--report", type=Path, default=None, help="print the table of a results file and exit")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.report:
        rows = [json.loads(line) for line in args.report.read_text().splitlines() if line.strip()]
        print(report(rows))
        return 0
    plan = [("aa", 0.0)] * args.aa_trials
    for cell in args.cells.split(","):
        mode, delta = cell.split(":")
        plan += [(mode, float(delta))] * args.trials
    random.Random(args.seed).shuffle(plan)
    rows = []
    with tempfile.TemporaryDirectory(prefix="perfgate-bench-ab-") as tmp:
        workdir = Path(tmp)
        ratio = calibrate_ratio(workdir)
        print(f"calibration: p50 / service time of {DEMO_SLOW_ENDPOINT} = {ratio:.2f}", file=sys.stderr)
        for number, (mode, delta) in enumerate(plan, 1):
            row = trial(workdir, mode, delta, ratio, number)
            rows.append(row)
            print(f"[{number}/{len(plan)}] {json.dumps(row)}", file=sys.stderr, flush=True)
            if args.results:
                with args.results.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    print(report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Live accuracy benchmark of ``perfgate ab``: blinded A/B runs with injected latency.

Run with ``uv run python tests/benchmarks/bench_ab.py [--trials 3] [--aa-trials 6]
[--cells one:10,all:10,...] [--results FILE] [--db FILE] [--seed 1]``; ``--report FILE``
prints the table of a results file without running anything, and ``--replay N --db FILE``
replays the A/A pairs a live run stored (see "Replay" below).

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

Replay
    Live trials are few, because each takes minutes. ``--replay N`` adds a cheaper
    estimate: it takes every valid A/A pair the live A/A trials stored in ``--db``,
    draws N sequences of 10 pairs from them at random (without replacement within a
    sequence), multiplies the head's latencies by (1 + δ) on GET /items or on every
    endpoint, and runs the same looks, α spending and stopping rule on them. At δ = 0
    every REGRESSED is a false alarm. Pairs of ``perfgate calibrate`` stored in the same
    file (A/A by design) join the pool: ``perfgate calibrate --pairs 40 --db FILE`` in the
    demo repository adds 40. The replays share their pairs, so they are not
    independent trials: they say how the procedure behaves on this machine's real pair
    noise, and the live table says how the whole A/B does.

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

import numpy as np

from perfgate.ab.session import AbRequest, ab_in_repository, spend_alpha
from perfgate.config import CompareConfig, Overrides, load_config
from perfgate.decide.compare import compare
from perfgate.decide.sides import RunValues, Side
from perfgate.decide.verdict import Outcome, SideInfo
from perfgate.demo.app import SERVICE_TIMES_MS
from perfgate.demo.walkthrough import DEMO_SLOW_ENDPOINT, make_demo_repo
from perfgate.measure.record import RunRequest, record_run
from perfgate.store import Store

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


def trial(workdir: Path, db: Path, mode: str, delta_pct: float, ratio: float, number: int) -> dict:
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
    with Store(db) as store:
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


def _scaled(run: RunValues, factor: float, endpoints: set[str] | None) -> RunValues:
    latency = ("min", "p50", "p90", "p95", "p99", "max", "mean")
    scaled = {k: s.model_copy(update={f: getattr(s, f) * factor for f in latency})
              if endpoints is None or k in endpoints else s for k, s in run.endpoints.items()}
    return RunValues(run.run_id, run.pair_id, run.valid, run.invalid_reasons, scaled)


def replay(db: Path, results: list[dict], replays: int, seed: int) -> str:
    """The looks and stopping rule replayed on stored A/A pairs, with a known effect added to the head."""
    with Store(db) as store:
        stored = sorted(store.runs(), key=lambda r: r.id)
    # Trials ran one after the other, in the order of the results file; calibration pairs are A/A by design.
    trial_ids = list(dict.fromkeys(r.trial_id for r in stored if r.purpose == "ab"))
    aa = {t for t, row in zip(trial_ids, results, strict=False) if row["mode"] == "aa"}
    by_pair: dict[str, list] = {}
    for run in stored:
        if run.valid and (run.purpose == "calibrate" or (run.purpose == "ab" and run.trial_id in aa)):
            by_pair.setdefault(run.pair_id, []).append(run)
    pairs = [sorted(p, key=lambda r: r.id) for p in by_pair.values() if len(p) == 2]
    values = [[RunValues(r.id, r.pair_id, True, [], {e.stats.key: e.stats for e in r.endpoints}) for r in p]
              for p in pairs]
    first = pairs[0][0]
    config = CompareConfig()
    looks = [3, 6, 10]
    alphas = spend_alpha(config.alpha, looks)
    rng = np.random.default_rng(seed)
    lines = [f"{len(pairs)} stored A/A pairs, {replays} replayed sequences of up to 10 pairs per cell", "",
             "| injected | REGRESSED | INCONCLUSIVE | UNCHANGED | other endpoint flagged | median pairs |",
             "|---|---|---|---|---|---|"]
    draws = [rng.choice(len(values), size=10, replace=False) for _ in range(replays)]
    for mode, delta in (("aa", 0), ("one", 5), ("one", 10), ("one", 20), ("all", 5), ("all", 10)):
        endpoints = None if mode == "all" else {DEMO_SLOW_ENDPOINT}
        outcomes, stray, used = [], 0, []
        for draw in draws:
            chosen = [values[i] for i in draw]
            base = [p[0] for p in chosen]
            head = [_scaled(p[1], 1 + delta / 100, endpoints) for p in chosen]
            for n, alpha in zip(looks, alphas, strict=True):
                sides = [Side(info=SideInfo(label=label, commit=None, runs=n), profile=first.profile.name,
                              load_parameters=first.profile.load_parameters(), environment=first.environment,
                              runs=side[:n]) for label, side in (("base", base), ("head", head))]
                verdict = compare(sides[0], sides[1], config.model_copy(update={"alpha": alpha}))
                if verdict.outcome in (Outcome.REGRESSED, Outcome.UNCHANGED, Outcome.IMPROVED):
                    break
            flagged = {e.endpoint for e in verdict.endpoints if e.outcome is Outcome.REGRESSED}
            target = next((e for e in verdict.endpoints if e.endpoint == DEMO_SLOW_ENDPOINT), None)
            outcomes.append(verdict.outcome.value if mode != "one" else (target.outcome.value if target else "invalid"))
            stray += bool(flagged - {DEMO_SLOW_ENDPOINT}) and mode != "all"
            used.append(n)
        share = {k: 100 * outcomes.count(k) / replays for k in ("regressed", "inconclusive", "unchanged")}
        label = "A/A (none)" if mode == "aa" else f"+{delta} % {'GET /items' if mode == 'one' else 'all endpoints'}"
        lines.append(f"| {label} | {share['regressed']:.1f} % | {share['inconclusive']:.1f} % | "
                     f"{share['unchanged']:.1f} % | {'–' if mode == 'all' else f'{100 * stray / replays:.1f} %'} | "
                     f"{statistics.median(used):g} |")
    return "\n".join(lines)


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
        label = (
            "A/A (none)"
            if mode == "aa"
            else f"+{delta:g} % {dict(one='GET /items', all='all endpoints', tail='tail of GET /items')[mode]}"
        )
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
    parser.add_argument("--db", type=Path, default=None, help="keep the runs in this store (default: temporary)")
    parser.add_argument("--replay", type=int, default=0, help="replay N sequences from the A/A pairs in --db")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.replay:
        if args.db is None or not args.db.exists() or args.results is None or not args.results.exists():
            parser.error("--replay needs --db and --results of a live run")
        rows = [json.loads(line) for line in args.results.read_text().splitlines() if line.strip()]
        print(replay(args.db, rows, args.replay, args.seed))
        return 0
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
        db = args.db or workdir / "bench.db"
        ratio = calibrate_ratio(workdir)
        print(f"calibration: p50 / service time of {DEMO_SLOW_ENDPOINT} = {ratio:.2f}", file=sys.stderr)
        for number, (mode, delta) in enumerate(plan, 1):
            row = trial(workdir, db, mode, delta, ratio, number)
            rows.append(row)
            print(f"[{number}/{len(plan)}] {json.dumps(row)}", file=sys.stderr, flush=True)
            if args.results:
                with args.results.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    print(report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Replay benchmark: how often does ``perfgate compare`` reach the right verdict?

Run with ``uv run python tests/benchmarks/bench_replay.py [--runs 20] [--run-time 8s] [--users 10]
[--replays 400] [--db PATH] [--seed 1]``.

Method
    1. Record ``--runs`` A/A runs: the same build of the demo service (``locustfiles/demo.py``,
       profile ``smoke`` with ``-u/-r --users``, ``-t --run-time``, 2 s warm-up). Every run
       starts a fresh service on a free port of 127.0.0.1 and stops it afterwards, as
       ``perfgate run --serve`` does in CI, so start-up state (caches, allocator, port) varies
       from run to run as it would between real builds. With ``--db PATH`` holding enough
       valid runs of the same load parameters on this machine, they are reused instead.
    2. Replay comparisons: for each number of runs per side k and each replay, draw 2k
       distinct recorded runs at random, give k to the baseline and k to the head, multiply
       every latency of the head by (1 + δ), and call ``perfgate.decide.compare.compare`` with the
       default ``CompareConfig``. The same draw is used for every δ (common random numbers),
       so the columns differ only by the injected effect. All draws come from one seeded
       ``numpy`` Generator.

Why replay is valid
    A/A runs of one build contain exactly the machine's real run-to-run noise (scheduling,
    CPU frequency, GC, service start-up) and no true change, so any difference between the
    two sides is noise. Scaling the head's latencies by (1 + δ) then adds a known true
    effect on top of that real noise: at δ = 0 every REGRESSED is a false alarm, at δ ≥ the
    practical margin (5 % for p50, 10 % for p95) every non-REGRESSED is a miss. The scaling
    touches the summary fields (min, p50, p90, p95, p99, max, mean) exactly and the latency
    histogram by shifting its log-bucket keys, which is exact to one bucket (0.2 %).
    Failures and throughput are left as recorded: the demo load is paced per user, so a
    slower build shows as latency, not as fewer requests.

It prints figures and never asserts; the exit status is 0.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from perfgate.config import CompareConfig, LoadedConfig, Overrides, PerfgateConfig, ResolvedProfile, ServeConfig
from perfgate.decide.compare import compare
from perfgate.decide.sides import side_from_runs
from perfgate.decide.verdict import Outcome
from perfgate.environment import environment_key, fingerprint
from perfgate.measure.record import RunRequest, record_run
from perfgate.records import RunRecord
from perfgate.samples import GAMMA, LatencyHistogram
from perfgate.store import Store

REPO = Path(__file__).resolve().parents[2]
DELTAS = (0.0, 0.02, 0.05, 0.10, 0.20)
RUNS_PER_SIDE = (3, 5, 10)
LATENCY_FIELDS = ("min", "p50", "p90", "p95", "p99", "max", "mean")
OUTCOMES = (Outcome.REGRESSED, Outcome.INCONCLUSIVE, Outcome.UNCHANGED, Outcome.IMPROVED, Outcome.INVALID)
TARGETS = {0.0: ("REGRESSED <= 1 %", lambda share: share <= 0.01),
           0.02: ("REGRESSED <= 5 %", lambda share: share <= 0.05),
           0.10: ("REGRESSED >= 90 %", lambda share: share >= 0.90)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="A/A runs to record or reuse (default 20)")
    parser.add_argument("--run-time", default="8s", help="Locust -t per run, warm-up included (default 8s)")
    parser.add_argument("--users", type=int, default=10, help="Locust -u, also the spawn rate (default 10)")
    parser.add_argument("--replays", type=int, default=400, help="replays per k (default 400)")
    parser.add_argument("--db", type=Path, help="run store to reuse or record into (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


def make_profile(args: argparse.Namespace) -> ResolvedProfile:
    loaded = LoadedConfig(config=PerfgateConfig(), source=None, root=REPO)
    overrides = Overrides(locustfile=str(REPO / "locustfiles" / "demo.py"), run_time=args.run_time,
                          users=args.users, spawn_rate=args.users, warmup="2s")
    return loaded.resolve("smoke", overrides, served=True)


def reusable_runs(store: Store, profile: ResolvedProfile) -> list[RunRecord]:
    """Valid stored runs of the same load on this machine, newest first."""
    env = environment_key(fingerprint())
    return [r for r in store.runs(profile=profile.name)
            if r.valid and r.profile.load_parameters() == profile.load_parameters()
            and r.profile.locustfile == profile.locustfile and environment_key(r.environment) == env]


def record_runs(store: Store, profile: ResolvedProfile, wanted: int) -> None:
    """Record ``wanted`` more valid runs (at most twice as many attempts), one fresh service each."""
    serve = ServeConfig(command=f"{sys.executable} -m perfgate.demo --port {{port}}",
                        ready_url="http://127.0.0.1:{port}/health")
    valid = 0
    for attempt in range(1, 2 * wanted + 1):
        if valid == wanted:
            return
        started = time.monotonic()
        run = record_run(RunRequest(profile=profile, repo_dir=REPO, serve=serve, serve_cwd=REPO), store)
        valid += run.valid
        state = "valid" if run.valid else "INVALID: " + "; ".join(run.invalid_reasons)
        print(f"  recorded run {valid}/{wanted} (attempt {attempt}, id {run.id}): {run.total_requests} requests, "
              f"{run.achieved_rps:.1f} req/s, {state}, {time.monotonic() - started:.1f} s", flush=True)


def scaled(run: RunRecord, delta: float) -> RunRecord:
    """The run with every latency multiplied by (1 + delta)."""
    if delta == 0:
        return run
    factor, shift = 1 + delta, round(math.log1p(delta) / math.log(GAMMA))
    endpoints = []
    for e in run.endpoints:
        stats = e.stats.model_copy(update={f: getattr(e.stats, f) * factor for f in LATENCY_FIELDS
                                           if getattr(e.stats, f) is not None})
        h = e.histogram
        histogram = LatencyHistogram(keys=h.keys + shift, counts=h.counts, zero_count=h.zero_count)
        endpoints.append(e.model_copy(update={"stats": stats, "histogram": histogram}))
    return run.model_copy(update={"endpoints": endpoints})


def print_spread(runs: list[RunRecord], min_requests: int) -> None:
    """Run-to-run spread per endpoint: sd of log p50 and log p95 (about the relative sd)."""
    keys = sorted({e.stats.key for r in runs for e in r.endpoints})
    print(f"\nRun-to-run spread over the {len(runs)} runs (sd of log quantile, ~ relative sd):")
    print(f"  {'endpoint':<22} {'sd log p50':>10} {'sd log p95':>10} {'requests/run (min-max)':>23}")
    sd50, sd95 = [], []
    for key in keys:
        stats = [e.stats for r in runs for e in r.endpoints if e.stats.key == key]
        a = statistics.stdev(math.log(s.p50) for s in stats if s.p50) if len(stats) > 1 else float("nan")
        b = statistics.stdev(math.log(s.p95) for s in stats if s.p95) if len(stats) > 1 else float("nan")
        sd50.append(a)
        sd95.append(b)
        counts = [s.count for s in stats]
        few = f"  < min_requests {min_requests}: INVALID" if min(counts) < min_requests else ""
        print(f"  {key:<22} {a:>10.1%} {b:>10.1%} {f'{min(counts)}-{max(counts)}':>23}{few}")
    print(f"  {'median over endpoints':<22} {statistics.median(sd50):>10.1%} {statistics.median(sd95):>10.1%}")


def replay(runs: list[RunRecord], args: argparse.Namespace, config: CompareConfig) -> None:
    rng = np.random.default_rng(args.seed)
    heads = {d: [scaled(r, d) for r in runs] for d in DELTAS}
    results: dict[tuple[int, float], Counter] = {}
    for k in RUNS_PER_SIDE:
        if 2 * k > len(runs):
            print(f"k = {k}: needs {2 * k} recorded runs, have {len(runs)}; skipped")
            continue
        started = time.perf_counter()
        for _ in range(args.replays):
            draw = rng.choice(len(runs), size=2 * k, replace=False)
            base_runs = [runs[i] for i in draw[:k]]
            base = side_from_runs("base", base_runs)
            for d in DELTAS:
                head = side_from_runs("head", [heads[d][i] for i in draw[k:]])
                results.setdefault((k, d), Counter())[compare(base, head, config).outcome] += 1
        elapsed = time.perf_counter() - started
        calls = args.replays * len(DELTAS)
        print(f"k = {k}: each replay draws {2 * k} of the {len(runs)} runs; {calls} comparisons in {elapsed:.1f} s "
              f"({1000 * elapsed / calls:.1f} ms each)", flush=True)

    shown = [o for o in OUTCOMES if o in (Outcome.REGRESSED, Outcome.INCONCLUSIVE, Outcome.UNCHANGED)
             or any(c[o] for c in results.values())]
    print(f"\nShare of verdicts per injected slowdown δ and runs per side k "
          f"({args.replays} replays per cell, alpha {config.alpha}, default margins {config.default_margins()}):")
    print(f"  {'δ':>5} {'k':>3} {'replays':>8} " + " ".join(f"{o.value.upper():>12}" for o in shown)
          + "   target")
    for d in DELTAS:
        for k in RUNS_PER_SIDE:
            counts = results.get((k, d))
            if counts is None:
                continue
            n = sum(counts.values())
            shares = " ".join(f"{counts[o] / n:>12.1%}" for o in shown)
            target = ""
            if d in TARGETS:
                text, ok = TARGETS[d]
                target = f"{text}: {'met' if ok(counts[Outcome.REGRESSED] / n) else 'NOT met'}"
            print(f"  {d:>5.0%} {k:>3} {n:>8} {shares}   {target}".rstrip())
    print("Replays that draw most of the recorded runs overlap heavily, so they are not independent: "
          "a cell's share is less precise than its count of replays suggests.")


def main() -> int:
    args = parse_args()
    profile = make_profile(args)
    config = CompareConfig()
    tmp = None
    if args.db is None:
        tmp = tempfile.TemporaryDirectory(prefix="perfgate-replay-")
        args.db = Path(tmp.name) / "replay.db"
    print(f"Recording settings: locustfile {Path(profile.locustfile).relative_to(REPO)}, profile {profile.name}, "
          f"users {profile.users}, spawn rate {profile.spawn_rate:g}/s, run time {profile.run_time:g} s "
          f"(warm-up {profile.warmup:g} s), fresh demo service on 127.0.0.1 per run")
    print(f"Store: {args.db}")
    with Store(args.db) as store:
        have = reusable_runs(store, profile)
        if len(have) >= args.runs:
            print(f"Reusing {args.runs} of {len(have)} stored valid runs with these settings")
        else:
            print(f"{len(have)} stored valid runs with these settings; recording {args.runs - len(have)} more")
            started = time.monotonic()
            record_runs(store, profile, args.runs - len(have))
            print(f"Recording took {time.monotonic() - started:.0f} s")
            have = reusable_runs(store, profile)
        runs = list(reversed(have[: args.runs]))
    if len(runs) < 2:
        print("Fewer than 2 valid runs: nothing to replay")
        return 0
    print(f"Using {len(runs)} runs (ids {runs[0].id} to {runs[-1].id}), "
          f"median {statistics.median(r.achieved_rps for r in runs):.1f} req/s per run")
    print_spread(runs, config.min_requests)
    print()
    replay(runs, args, config)
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

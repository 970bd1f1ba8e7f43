"""Live accuracy benchmark of ``perfgate ab``, both modes side by side: blinded A/B runs with injected latency.

Run with ``uv run python tests/benchmarks/bench_ab.py [--trials 3] [--aa-trials 6]
[--cells one:10,all:10,...] [--modes alternate,duet] [--results FILE] [--db FILE] [--seed 1]``;
``--report FILE`` prints the tables of a results file without running anything, and
``--replay N --db FILE --results FILE`` replays the A/A runs a live run stored (see "Replay").

Method
    Each trial builds the throwaway repository of ``perfgate demo`` (two commits of the
    demo service; the second one slowed) and runs the full ``perfgate ab`` on it with the
    demo's profile (40 users, 10 s runs, 2 s warm-up) and the default settings of the
    mode: ``alternate`` (pairs of runs one after the other, looks at 3, 6, 10 pairs) or
    ``duet`` (both versions served at once, 40 users on each, looks at 2, 4, 6 runs);
    α = 0.05, margins 5 % (p50) and 10 % (p95). Every planned cell is run once in each
    mode, the two back to back in random order, and the cells in random order: the modes
    are interleaved on the same machine, and the gate is blind to the cell.

    Injected latency δ is relative to the measured latency of the slowed endpoint, not to
    its simulated service time: a calibration run first measures ``p50 / service time`` of
    ``GET /items`` (about 1.4 here), and the demo's knob is set to that ratio times δ.
    Cells ``kind:where:δ``, ``kind`` being ``wait`` (the added time is awaited, as I/O) or
    ``cpu`` (it is computed, holding a CPU), ``where`` one of ``one`` (GET /items only),
    ``all`` (every endpoint, the same knob) and ``tail`` (10 % of GET /items requests slowed
    ten times as much, so that the mean rises by δ; mostly a p95 change). ``one:10`` is
    short for ``wait:one:10``. A trial counts as REGRESSED when the verdict is REGRESSED
    (for ``one`` and ``tail``: on GET /items; a REGRESSED elsewhere is counted as a false
    alarm as well). Each row also keeps the verdict's estimate of the GET /items p50 change:
    set beside the alternate mode's, the duet mode's shows what serving both versions at once
    costs a difference (a CPU-bound head slows the base too on a shared CPU).

The shop
    ``--service shop`` runs the same trials on ``examples/shop`` copied into a repository of
    its own (FastAPI + SQLite, a slow password hash at each user's login in ``on_start``,
    state reset before every serve), 20 users (20 on each side in the duet mode), 30 s runs
    with a 10 s warm-up. Its cells are ``one:δ`` only: the head sleeps in GET /api/products
    for δ % of that endpoint's p50 measured in a calibration run.

Replay
    Live trials are few, because each takes minutes. ``--replay N`` adds a cheaper
    estimate per mode: it takes every valid A/A pair (alternate) or A/A same-moment run
    (duet) the live A/A trials stored in ``--db``, draws N sequences of up to the last look
    from them at random (without replacement within a sequence), multiplies the head's
    latencies by (1 + δ) (every latency of the endpoint, or only its p95 and p99 for
    ``tail``; blocks alike), and runs the same looks, α spending and stopping rule on them.
    At δ = 0 every REGRESSED is a false alarm. The replays share their runs, so they are not
    independent trials: they say how each procedure behaves on this machine's real noise.
    It also prints the A/A spread of the first look's estimate of GET /items p50 in each
    mode, and the variance-reduction factor of the duet mode: the ratio of the two spreads'
    variances, raw and per minute of measuring.

It prints figures and never asserts; the exit status is 0.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perfgate.ab.session import AbRequest, ab_in_repository, spend_alpha
from perfgate.config import DEFAULT_LOOKS, AbMode, CompareConfig, Overrides, load_config
from perfgate.decide.compare import compare
from perfgate.decide.sides import RunValues, Side
from perfgate.decide.verdict import Metric, Outcome, SideInfo
from perfgate.demo.app import SERVICE_TIMES_MS
from perfgate.demo.walkthrough import DEMO_SLOW_ENDPOINT, make_demo_repo
from perfgate.measure.record import RunRequest, record_run
from perfgate.records import RunRecord
from perfgate.store import Store

DEFAULT_CELLS = "one:2,one:5,one:10,all:5,tail:10,cpu:one:10"
TAIL_FRACTION = 0.1
MODES = ("alternate", "duet")
LATENCY = ("min", "p50", "p90", "p95", "p99", "max", "mean")


SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"
SHOP_ENDPOINT = "GET /api/products"
SHOP_TOML = """profile = "shop"
locustfile = "locustfile.py"

[serve]
command = "{python} -m uvicorn shop.app:app --port {{port}}"
ready_url = "http://127.0.0.1:{{port}}/api/products"

[ab]
reset = "rm -f shop.db shop.db-wal shop.db-shm"

[profiles.shop]
extends = "smoke"
users = 20
spawn_rate = 20
run_time = "{run_time}"
warmup = "10s"
"""
SHOP_SLOW = "def products() -> list[dict[str, object]]:\n"


@dataclass(frozen=True)
class Service:
    """What a trial A/Bs: a throwaway repository whose branch ``slower`` slows ``endpoint`` (or more)."""

    name: str
    endpoint: str

    def make_repo(self, repo: Path, cell: tuple[str, str, float], ratio: float) -> float:
        """The repository of one trial; returns the knob that was set (percent of the service time, or ms)."""
        kind, where, delta_pct = cell
        knob = ratio * delta_pct
        if self.name == "demo":
            make_demo_repo(repo, slowdown_pct=knob, slow_endpoint="" if where == "all" else DEMO_SLOW_ENDPOINT,
                           tail_fraction=TAIL_FRACTION if where == "tail" else 0.0, slow_kind=kind)
        else:
            if kind != "wait" or where not in ("aa", "one"):
                raise SystemExit(f"the shop takes cells one:DELTA only, not {kind}:{where}")
            make_shop_repo(repo, sleep_ms=knob)
        return knob

    def calibrate(self, workdir: Path) -> float:
        """Demo: measured p50 of the slowed endpoint over its simulated service time (a knob is a percent of
        it). Shop: the slowed endpoint's measured p50 in ms over 100 (a knob is milliseconds of sleep)."""
        repo = workdir / "calibration"
        if self.name == "demo":
            make_demo_repo(repo, slowdown_pct=0.0)
        else:
            make_shop_repo(repo, sleep_ms=0.0)
        loaded = load_config(start=repo)
        profile = loaded.resolve(None, Overrides(), served=True)
        with Store(workdir / "calibration.db") as store:
            run = record_run(RunRequest(profile=profile, repo_dir=repo, serve=loaded.serve(), serve_cwd=repo), store)
        endpoint = run.endpoint(self.endpoint)
        assert endpoint is not None and endpoint.stats.p50
        if self.name == "demo":
            return endpoint.stats.p50 / SERVICE_TIMES_MS[DEMO_SLOW_ENDPOINT]
        return endpoint.stats.p50 / 100


SERVICES = {"demo": Service("demo", DEMO_SLOW_ENDPOINT), "shop": Service("shop", SHOP_ENDPOINT)}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@perfgate.invalid", "-c",
                    "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args], cwd=repo, check=True,
                   capture_output=True, timeout=60)


def make_shop_repo(repo: Path, *, sleep_ms: float, run_time: str = "30s") -> None:
    """examples/shop as a team's own repository on ``main``; branch ``slower`` sleeps ``sleep_ms`` in GET
    /api/products (waiting, as a slower query would; a comment only when it is 0, for an A/A)."""
    shutil.copytree(SHOP, repo, ignore=shutil.ignore_patterns("__pycache__", "*.db*", ".venv"))
    python = shlex.quote(sys.executable).replace("\\", "\\\\").replace('"', '\\"')
    (repo / "perfgate.toml").write_text(SHOP_TOML.format(python=python, run_time=run_time))
    (repo / ".gitignore").write_text(".perfgate/\n__pycache__/\nshop.db*\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "shop")
    _git(repo, "checkout", "-q", "-b", "slower")
    app = repo / "shop" / "app.py"
    text = app.read_text()
    assert SHOP_SLOW in text, "examples/shop/shop/app.py no longer has the products handler the bench slows"
    body = (f"    time.sleep({sleep_ms / 1000:.6f})  # the change under test\n" if sleep_ms
            else "    # an unrelated change: nothing is slower\n")
    app.write_text(text.replace("import threading\n", "import threading\nimport time\n")
                   .replace(SHOP_SLOW, SHOP_SLOW + body))
    _git(repo, "commit", "-q", "-am", f"products: {sleep_ms:.3f} ms slower")


def parse_cell(cell: str) -> tuple[str, str, float]:
    """``kind:where:delta`` (``where:delta`` means the ``wait`` kind)."""
    parts = cell.split(":")
    kind, where, delta = (parts if len(parts) == 3 else ["wait", *parts])
    return kind, where, float(delta)


def trial(workdir: Path, db: Path, cell: tuple[str, str, float], ratio: float, number: int, mode: str,
          service: Service = SERVICES["demo"]) -> dict:
    kind, where, delta_pct = cell
    repo = workdir / f"trial-{number}-{mode}"
    knob = service.make_repo(repo, cell, ratio)
    loaded = load_config(start=repo)
    request = AbRequest(loaded=loaded, settings=loaded.ab_settings(mode=mode), cwd=repo, base_ref="main",
                        profile=loaded.resolve(None, Overrides(), served=True), serve=loaded.serve())
    started = time.monotonic()
    with Store(db) as store:
        result = ab_in_repository(request, store)
    verdict = result.verdict
    regressed = sorted(e.endpoint for e in verdict.endpoints if e.outcome is Outcome.REGRESSED)
    target = next((e for e in verdict.endpoints if e.endpoint == service.endpoint), None)
    p50 = next((t for t in target.tests if t.metric is Metric.P50), None) if target else None
    return {
        "service": service.name, "endpoint": service.endpoint,
        "ab_mode": mode, "mode": where if delta_pct else "aa", "kind": kind, "delta": delta_pct, "knob_pct": knob,
        "verdict": verdict.outcome.value, "regressed": regressed,
        "target": target.outcome.value if target else None,
        "p50_change": p50.change if p50 else None,
        "pairs": verdict.sequential.pairs if verdict.sequential else None,
        "seconds": time.monotonic() - started,
        "trial_id": result.pairs[0].base.trial_id if result.pairs else None,
    }


# -- replay ------------------------------------------------------------------------------------------------

def _values(run: RunRecord) -> RunValues:
    return RunValues(run.id, run.pair_id, True, [], {e.stats.key: e.stats for e in run.endpoints},
                     blocks={e.stats.key: (e.block_s, e.blocks) for e in run.endpoints if e.block_s is not None})


def _scaled(run: RunValues, factor: float, endpoints: set[str] | None, tail: bool) -> RunValues:
    """The run with its latencies multiplied by ``factor`` (only p95 and up for ``tail``), blocks alike."""
    fields = ("p95", "p99", "max") if tail else LATENCY
    def hit(key: str) -> bool:
        return endpoints is None or key in endpoints
    stats = {k: s.model_copy(update={f: getattr(s, f) * factor for f in fields if getattr(s, f) is not None})
             if hit(k) else s for k, s in run.endpoints.items()}
    block_fields = [f for f in ("p50", "p95", "p99") if f in fields]
    blocks = {k: (length, [b.model_copy(update={f: getattr(b, f) * factor for f in block_fields
                                                if getattr(b, f) is not None}) for b in bs])
              if hit(k) else (length, bs) for k, (length, bs) in run.blocks.items()}
    return RunValues(run.run_id, run.pair_id, run.valid, run.invalid_reasons, stats, blocks=blocks)


def _aa_pairs(db: Path, rows: list[dict], mode: str) -> list[tuple[RunValues, RunValues]]:
    """Every valid A/A pair of one mode the live trials stored, (first run, second run) by id."""
    aa = {r["trial_id"] for r in rows if r["mode"] == "aa" and r.get("ab_mode", "alternate") == mode}
    purpose = "duet" if mode == "duet" else "ab"
    with Store(db) as store:
        stored = [r for r in store.runs() if r.trial_id in aa and r.purpose == purpose and r.valid]
    by_pair: dict[str | None, list[RunRecord]] = {}
    for run in sorted(stored, key=lambda r: r.id or 0):
        by_pair.setdefault(run.pair_id, []).append(run)
    return [(_values(p[0]), _values(p[1])) for p in by_pair.values() if len(p) == 2]


REPLAY_CELLS = (("aa", 0), ("one", 2), ("one", 5), ("one", 10), ("all", 2), ("all", 5), ("all", 10),
                ("tail", 5), ("tail", 10))


def replay(db: Path, rows: list[dict], replays: int, seed: int, margin_p50: float | None = None) -> str:
    """The looks and stopping rule of each mode replayed on its stored A/A pairs, with a known effect added."""
    config = CompareConfig() if margin_p50 is None else CompareConfig(margins={"p50": margin_p50})
    lines = [f"margins: p50 {config.margin('', 'p50'):.0%}, p95 {config.margin('', 'p95'):.0%}", "",
             "| mode | injected | REGRESSED | INCONCLUSIVE | UNCHANGED | other endpoint flagged "
             "| median pairs or runs |",
             "|---|---|---|---|---|---|---|"]
    spreads: dict[str, tuple[float, float, int]] = {}
    slowed = _endpoint(rows)
    for mode in MODES:
        pairs = _aa_pairs(db, rows, mode)
        looks = DEFAULT_LOOKS[AbMode(mode)]
        if len(pairs) < looks[-1]:
            lines.append(f"| {mode} | – | {len(pairs)} stored A/A pair(s), {looks[-1]} needed | | | | |")
            continue
        alphas = spend_alpha(config.alpha, looks)
        rng = np.random.default_rng(seed)
        draws = [rng.choice(len(pairs), size=looks[-1], replace=False) for _ in range(replays)]
        first_look: list[float] = []
        for where, delta in REPLAY_CELLS:
            endpoints = None if where == "all" else {slowed}
            outcomes, stray, used = [], 0, []
            for draw in draws:
                chosen = [pairs[i] for i in draw]
                base = [p[0] for p in chosen]
                head = [_scaled(p[1], 1 + delta / 100, endpoints, where == "tail") for p in chosen]
                for n, alpha in zip(looks, alphas, strict=True):
                    verdict = compare(*_sides(base[:n], head[:n]), config.model_copy(update={"alpha": alpha}))
                    if where == "aa" and n == looks[0]:
                        first_look.append(_p50_change(verdict, slowed))
                    if verdict.outcome in (Outcome.REGRESSED, Outcome.UNCHANGED, Outcome.IMPROVED):
                        break
                flagged = {e.endpoint for e in verdict.endpoints if e.outcome is Outcome.REGRESSED}
                target = next((e for e in verdict.endpoints if e.endpoint == slowed), None)
                outcomes.append(verdict.outcome.value if where in ("aa", "all")
                                else (target.outcome.value if target else "invalid"))
                stray += bool(flagged - {slowed}) and where != "all"
                used.append(n)
            share = {k: 100 * outcomes.count(k) / replays for k in ("regressed", "inconclusive", "unchanged")}
            label = "A/A (none)" if where == "aa" else f"+{delta} % {_where(where, slowed)}"
            others = "–" if where == "all" else f"{100 * stray / replays:.1f} %"
            lines.append(f"| {mode} | {label} | {share['regressed']:.1f} % | {share['inconclusive']:.1f} % | "
                         f"{share['unchanged']:.1f} % | {others} | {statistics.median(used):g} |")
        seconds = _median_run_seconds(rows, mode) * looks[0]
        spreads[mode] = (float(np.std(first_look)), seconds, len(pairs))
    lines += ["", f"| mode | stored A/A pairs or runs | A/A spread of the first look's {slowed} p50 estimate | "
              "measuring time of the first look |", "|---|---|---|---|"]
    for mode, (spread, seconds, n) in spreads.items():
        lines.append(f"| {mode} | {n} | {100 * spread:.2f} % | {seconds / 60:.1f} min |")
    if len(spreads) == 2:
        (sa, ta, _), (sd, td, _) = spreads["alternate"], spreads["duet"]
        lines += ["", f"variance-reduction factor of the duet mode at the first look: {(sa / sd) ** 2:.1f}× "
                      f"(per minute of measuring: {(sa / sd) ** 2 * ta / td:.1f}×)"]
    return "\n".join(lines)


def _sides(base: list[RunValues], head: list[RunValues]) -> tuple[Side, Side]:
    def side(label: str, runs: list[RunValues]) -> Side:
        return Side(info=SideInfo(label=label, commit=None, runs=len(runs)), profile="demo", load_parameters={},
                    environment=None, runs=runs)
    return side("base", base), side("head", head)


def _p50_change(verdict, endpoint: str) -> float:  # noqa: ANN001
    target = next((e for e in verdict.endpoints if e.endpoint == endpoint), None)
    test = next((t for t in target.tests if t.metric is Metric.P50), None) if target else None
    return test.change if test is not None and test.change is not None else float("nan")


def _median_run_seconds(rows: list[dict], mode: str) -> float:
    """Seconds of measuring per pair (alternate) or same-moment run (duet), from the live trials."""
    per = [r["seconds"] / r["pairs"] for r in rows if r.get("ab_mode", "alternate") == mode and r["pairs"]]
    return statistics.median(per) if per else float("nan")


# -- live tables -------------------------------------------------------------------------------------------

def _endpoint(rows: list[dict]) -> str:
    """The endpoint a results file's trials slowed (one service per file)."""
    return rows[0].get("endpoint", DEMO_SLOW_ENDPOINT) if rows else DEMO_SLOW_ENDPOINT


def _where(where: str, endpoint: str) -> str:
    return dict(one=endpoint, all="all endpoints", tail=f"tail of {endpoint}")[where]


def _hit(row: dict) -> str:
    """The trial's outcome as the cell's target sees it."""
    if row["mode"] in ("all", "aa"):
        return row["verdict"]
    return row["target"] or "invalid"


def report(rows: list[dict]) -> str:
    cells: dict[tuple, list[dict]] = {}
    for row in rows:
        key = (row.get("ab_mode", "alternate"), row["mode"], row.get("kind", "wait"), row["delta"])
        cells.setdefault(key, []).append(row)
    lines = ["| mode | injected | trials | REGRESSED | INCONCLUSIVE | UNCHANGED | other endpoint flagged | "
             "median pairs or runs | median time to verdict | median p50 change measured |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    order = {"aa": 0, "one": 1, "all": 2, "tail": 3}
    for (mode, where, kind, delta), group in sorted(cells.items(), key=lambda kv: (
            kv[0][0], order[kv[0][1]], kv[0][2], kv[0][3])):
        n = len(group)
        hits = [_hit(r) for r in group]
        share = {k: sum(h == k for h in hits) for k in ("regressed", "inconclusive", "unchanged")}
        slowed = _endpoint(group)
        stray = sum(any(e != slowed for e in r["regressed"]) for r in group if where != "all")
        cpu = " (CPU)" if kind == "cpu" else ""
        label = "A/A (none)" if where == "aa" else f"+{delta:g} % {_where(where, slowed)}{cpu}"
        changes = [r["p50_change"] for r in group if r.get("p50_change") is not None]
        measured = f"{100 * statistics.median(changes):+.1f} %" if changes else "–"
        lines.append(
            f"| {mode} | {label} | {n} | {share['regressed']}/{n} | {share['inconclusive']}/{n} | "
            f"{share['unchanged']}/{n} | {'–' if where == 'all' else f'{stray}/{n}'} | "
            f"{statistics.median(r['pairs'] or 0 for r in group):g} | "
            f"{statistics.median(r['seconds'] for r in group) / 60:.1f} min | {measured} |")
    for mode in sorted({r.get("ab_mode", "alternate") for r in rows}):
        mine = [r for r in rows if r.get("ab_mode", "alternate") == mode]
        lines.append(f"\n{mode}: {len(mine)} trials, median time to a verdict "
                     f"{statistics.median(r['seconds'] for r in mine) / 60:.1f} min")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=2, help="trials per injected cell and mode")
    parser.add_argument("--aa-trials", type=int, default=4, help="A/A trials per mode")
    parser.add_argument("--cells", default=DEFAULT_CELLS, help=f"[kind:]where:delta list (default {DEFAULT_CELLS})")
    parser.add_argument("--modes", default=",".join(MODES), help="ab modes to run, interleaved")
    parser.add_argument("--results", type=Path, default=None, help="JSON-lines file to append results to")
    parser.add_argument("--report", type=Path, default=None, help="print the table of a results file and exit")
    parser.add_argument("--db", type=Path, default=None, help="keep the runs in this store (default: temporary)")
    parser.add_argument("--replay", type=int, default=0, help="replay N sequences from the A/A runs in --db")
    parser.add_argument("--margin-p50", type=float, default=None, help="the replay's p50 margin (default 0.05)")
    parser.add_argument("--service", choices=sorted(SERVICES), default="demo",
                        help="demo: perfgate's demo service; shop: examples/shop (logins in on_start, SQLite)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.replay:
        if args.db is None or not args.db.exists() or args.results is None or not args.results.exists():
            parser.error("--replay needs --db and --results of a live run")
        rows = [json.loads(line) for line in args.results.read_text().splitlines() if line.strip()]
        print(replay(args.db, rows, args.replay, args.seed, args.margin_p50))
        return 0
    if args.report:
        rows = [json.loads(line) for line in args.report.read_text().splitlines() if line.strip()]
        print(report(rows))
        return 0
    modes = [m for m in args.modes.split(",") if m]
    plan = [("wait", "aa", 0.0)] * args.aa_trials
    for cell in args.cells.split(","):
        plan += [parse_cell(cell)] * args.trials
    rng = random.Random(args.seed)
    rng.shuffle(plan)
    schedule = [(cell, mode) for cell in plan for mode in rng.sample(modes, len(modes))]
    rows = []
    with tempfile.TemporaryDirectory(prefix="perfgate-bench-ab-") as tmp:
        workdir = Path(tmp)
        db = args.db or workdir / "bench.db"
        service = SERVICES[args.service]
        ratio = service.calibrate(workdir)
        print(f"calibration of {service.name}: {service.endpoint} knob per 1 % = {ratio:.3f}", file=sys.stderr)
        for number, (cell, mode) in enumerate(schedule, 1):
            row = trial(workdir, db, cell, ratio, number, mode, service)
            rows.append(row)
            print(f"[{number}/{len(schedule)}] {json.dumps(row)}", file=sys.stderr, flush=True)
            if args.results:
                with args.results.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    print(report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What every report of a verdict says, built once: the terminal, the Markdown comment and the HTML report
only style it.

A line is a tuple of :class:`Part`: perfgate's own words, text from outside (an endpoint, a branch, a reason:
escaped and bounded by each renderer for its medium), code (a commit or a path) and strong words. The
provenance of a verdict (each side, the load, the settings, the A/B's course, the environment), its baseline
and gate-input changes, and its failure lines are written here and nowhere else, with the number formats
that every report shares. Nothing here computes a statistic.

Over 450 lines: it is every sentence the three renderers share, kept in one module so that they cannot drift
apart (a test renders each verdict in all three and compares their provenance and failure lines).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from perfgate import textsafety
from perfgate.decide.rules import parameter_value
from perfgate.decide.verdict import (
    BaselineChange,
    BudgetResult,
    EndpointVerdict,
    FailureKind,
    GateInputChange,
    Metric,
    MetricTest,
    Outcome,
    Sequential,
    SideInfo,
    Verdict,
)
from perfgate.environment import EnvironmentFingerprint

# -- lines ------------------------------------------------------------------------------------------------

PartKind = Literal["word", "field", "code", "strong"]


@dataclass(frozen=True)
class Part:
    """A piece of a line: ``word`` and ``strong`` are perfgate's own words (shown as they are, ``strong``
    emphasised); ``field`` is text from outside, escaped for the medium and bounded to ``limit``; ``code`` is
    a commit or a file name, shown as code."""

    text: str
    kind: PartKind = "word"
    limit: int = textsafety.TEXT_CHARS


Line = tuple[Part, ...]


def word(text: str) -> Part:
    return Part(text)


def field(text: object, limit: int = textsafety.TEXT_CHARS) -> Part:
    return Part(str(text), "field", limit)


def code(text: str) -> Part:
    return Part(text, "code", textsafety.CODE_CHARS)


def strong(text: str) -> Part:
    return Part(text, "strong")


def plain(line: Iterable[Part]) -> str:
    """The line as plain text: every field and code part stripped of invisible characters and bounded."""
    return "".join(p.text if p.kind in ("word", "strong") else textsafety.plain_text(p.text, p.limit) for p in line)


# -- numbers ----------------------------------------------------------------------------------------------

ICONS = {Outcome.BROKEN: "⛔", Outcome.REGRESSED: "🔴", Outcome.IMPROVED: "🟢", Outcome.UNCHANGED: "✅",
         Outcome.INCONCLUSIVE: "🟡", Outcome.INVALID: "⚪"}


def format_change(test: MetricTest | None, interval: bool = True) -> str:
    if test is None or test.change is None:
        return "–"
    unit = " pp" if not test.metric.relative else " %"
    text = f"{test.change * 100:+.1f}{unit}"
    if interval and test.ci_low is not None and test.ci_high is not None:
        text += f" [{test.ci_low * 100:+.1f}, {test.ci_high * 100:+.1f}]"
    return text


def format_value(test: MetricTest | None, which: str) -> str:
    if test is None:
        return "–"
    value = test.base_value if which == "base" else test.head_value
    if value is None:
        return "–"
    if test.metric is Metric.FAILURE_RATE:
        return f"{value * 100:.2f} %"
    if test.metric is Metric.THROUGHPUT:
        return f"{value:.1f}/s"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def format_failures(test: MetricTest | None) -> str:
    """Failure rates of both sides (their change is an interval of zeros more often than not)."""
    if test is None or test.base_value is None or test.head_value is None:
        return "–"
    return f"{100 * test.base_value:.2f} → {100 * test.head_value:.2f}"


def format_margin(metric: str, margin: float) -> str:
    """``5 %``, ``2.5 %``, ``1 pp``: a margin as every report shows it (the failure rate's in percentage points)."""
    return f"{margin * 100:g}{' pp' if metric == 'failure_rate' else ' %'}"


def interval_level(alpha: float) -> str:
    """``90``: the two-sided level, in per cent, of the intervals a verdict of this α shows."""
    return f"{round((1 - 2 * alpha) * 100, 1):g}"


def budget_quantity(metric: str, value: float | None) -> str:
    """A budget's value or limit with its unit: ``18.2 ms``, ``0.50 %``, ``45.3 req/s``."""
    if value is None:
        return "no data"
    if metric == "failure_rate":
        return f"{value * 100:.2f} %"
    if metric == "rps":
        return f"{value:.1f} req/s"
    return f"{value:.3g} ms" if value < 1000 else f"{value:.0f} ms"


def budget_comparison(budget: BudgetResult) -> str:
    """``18.2 ms ≤ 100 ms`` when it holds, ``120 ms > 100 ms`` when not: the value against its limit, k6-style."""
    at_least = budget.metric == "rps"
    if budget.value is None:
        relation = "≥" if at_least else "≤"
        return f"no data (limit {relation} {budget_quantity(budget.metric, budget.limit)})"
    relation = ("≥" if budget.passed else "<") if at_least else ("≤" if budget.passed else ">")
    return f"{budget_quantity(budget.metric, budget.value)} {relation} {budget_quantity(budget.metric, budget.limit)}"


def budgets_failed_first(budgets: list[BudgetResult]) -> list[BudgetResult]:
    """Every budget, the failed ones first (each group in its own order)."""
    return [b for b in budgets if not b.passed] + [b for b in budgets if b.passed]


def age(moment: datetime | None, now: datetime) -> str:
    """``3 days old``: how long ago the newest run of a side was recorded."""
    if moment is None:
        return "age unknown"
    seconds = max(0.0, (now - moment).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} old"
    return "just recorded"


def load_summary(parameters: dict) -> str:
    """The load parameters that were set, in a line, each with its unit."""
    parts = [f"{key} {parameter_value(key, value)}"
             for key, value in sorted(parameters.items()) if value not in (None, [], {}, "")]
    return ", ".join(parts)


COUNT_ORDER = (Outcome.BROKEN, Outcome.REGRESSED, Outcome.INVALID, Outcome.INCONCLUSIVE, Outcome.IMPROVED,
               Outcome.UNCHANGED)
"""The order of the count line: what needs a reader first."""


def outcome_counts(verdict: Verdict) -> str:
    """``1 regressed · 2 inconclusive · 36 unchanged``: endpoints by outcome."""
    counts = Counter(e.outcome for e in verdict.endpoints)
    return " · ".join(f"{counts[o]} {o.value}" for o in COUNT_ORDER if counts[o])


def distinct_reasons(verdict: Verdict) -> list[str]:
    """The verdict's reasons, each once, without those the headline already says."""
    return [r for r in dict.fromkeys(verdict.reasons) if r not in verdict.headline]


STOP_REASONS = {
    "decided": "every test decided",
    "regressed": "a regression was found",
    "max-pairs": "the pair budget was reached",
    "max-time": "the time budget was reached",
    "invalid": "what is left undecided is invalid, and more pairs cannot change that",
    "broken": "the head broke the service (its runs stayed invalid where the base's were valid)",
}


def sequential_summary(seq: Sequential) -> str:
    """``6 pair(s) in balanced order, judged at 3, 6 of the planned 3, 6, 10; stopped because …``; in the duet
    mode, ``2 same-moment run(s) of base and head together …``."""
    looks = ", ".join(map(str, seq.looks_taken))
    unit = ("same-moment run(s) of base and head together (sides swapped each run)" if seq.mode == "duet"
            else "pair(s) in balanced order")
    text = (f"{seq.pairs} {unit}, judged at {looks} of the planned "
            f"{', '.join(map(str, seq.planned_looks))}; stopped because {STOP_REASONS.get(seq.stopped, seq.stopped)}; "
            f"α {seq.alpha:g} spent as {' + '.join(f'{a:.4f}' for a in seq.alpha_spent)}; "
            f"{seq.elapsed_s / 60:.1f} min")
    if seq.invalid_pairs:
        text += f"; {seq.invalid_pairs} pair(s) re-run for an invalid run"
    if seq.confirmation is not None:
        c = seq.confirmation
        text += (f"; confirmation in {c.pairs} fresh pair(s): {len(c.confirmed)} of {len(c.tests)} "
                 "flagged test(s) held")
    return text


def test_of(tests: list[MetricTest], metric: str) -> MetricTest | None:
    return next((t for t in tests if t.metric.value == metric), None)


def detectable_ranges(verdict: Verdict) -> str:
    """``p50 6–12 %, p95 11–30 %``: the smallest change the runs could call a regression, over endpoints."""
    parts = []
    for metric in (Metric.P50, Metric.P95, Metric.P99):
        values = sorted(t.detectable for e in verdict.endpoints for t in e.tests
                        if t.metric is metric and t.detectable is not None)
        if values:
            low, high = values[0] * 100, values[-1] * 100
            parts.append(f"{metric.value} {low:.0f} %" if round(low) == round(high) else
                         f"{metric.value} {low:.0f}–{high:.0f} %")
    return ", ".join(parts)


# -- the headline -----------------------------------------------------------------------------------------

BUDGETS_HOLD = "BUDGETS HOLD (no baseline)"
BUDGETS_EXCEEDED = "BUDGETS EXCEEDED (no baseline)"


def budgets_only(verdict: Verdict) -> bool:
    """A verdict on budgets alone: no baseline, no endpoint judged. Its outcome is UNCHANGED, which would read
    as "compared, and no change" where nothing was compared."""
    return (verdict.base is None and verdict.outcome is Outcome.UNCHANGED and bool(verdict.budgets)
            and not any(e.judged for e in verdict.endpoints))


def outcome_label(verdict: Verdict) -> str:
    """The verdict's outcome in a word or two, as every report titles it: ``REGRESSED``,
    ``BUDGETS HOLD (no baseline)``."""
    if budgets_only(verdict):
        return BUDGETS_HOLD if verdict.budgets_passed else BUDGETS_EXCEEDED
    return verdict.outcome.value.upper()


def shown_outcome(verdict: Verdict) -> Outcome:
    """The outcome whose icon and colour the title takes: a budgets-only verdict with a failed budget is red."""
    if budgets_only(verdict) and not verdict.budgets_passed:
        return Outcome.REGRESSED
    return verdict.outcome


def headline(verdict: Verdict) -> str:
    """The verdict's headline, its leading word the :func:`outcome_label` (text from the verdict file: escape it)."""
    text = verdict.headline
    if budgets_only(verdict):
        for prefix in ("UNCHANGED: no baseline; ", "UNCHANGED: "):
            if text.startswith(prefix):
                return f"{outcome_label(verdict)}: {text[len(prefix):]}"
    return text


# -- provenance -------------------------------------------------------------------------------------------

RUN_IDS_SHOWN = 8


def side_line(role: str, side: SideInfo, now: datetime) -> Line:
    """``head: `abc1234567` on main, 5 run(s) (1 invalid), 2 days old``: which commit, branch and runs a side is."""
    parts: list[Part] = [word(f"{role}: ")]
    if side.label != role:
        parts += [field(side.label, textsafety.NAME_CHARS), word(" ")]
    parts.append(code((side.commit or "no commit")[:10]))
    if side.branch:
        parts += [word(" on "), field(side.branch, textsafety.NAME_CHARS)]
    if side.dirty:
        parts.append(word(" (uncommitted changes)"))
    runs = f", {side.runs} run(s)" + (f" ({side.invalid_runs} invalid)" if side.invalid_runs else "")
    parts.append(word(f"{runs}, {age(side.newest_run_at, now)}"))
    if side.run_ids:
        more = ", …" if len(side.run_ids) > RUN_IDS_SHOWN else ""
        parts.append(word(f", run ids {', '.join(map(str, side.run_ids[:RUN_IDS_SHOWN]))}{more}"))
    if side.baseline_file:
        parts += [word(", pinned in "), code(side.baseline_file)]
    if side.accepted_by or side.reason:
        parts += [word(", accepted by "), field(side.accepted_by or "unknown", textsafety.NAME_CHARS)]
        if side.reason:
            parts += [word(": "), field(side.reason)]
    return tuple(parts)


def _environment(env: EnvironmentFingerprint) -> list[Part]:
    name = textsafety.NAME_CHARS
    return [field(env.cpu_model, name), word(f", {env.cores} cores, "), field(env.os, name), word(", Python "),
            field(env.python, name), word(", Locust "), field(env.locust, name), word(", perfgate "),
            field(env.perfgate, name)]


def environment_lines(verdict: Verdict) -> list[Line]:
    """Where each side ran, and where its load came from when not from that machine alone (remote workers):
    one line when both sides share it, a line per side when not."""
    head = verdict.head.environment
    base = verdict.base.environment if verdict.base is not None else None
    lines: list[Line] = []
    if head is not None and base is not None and head == base:
        lines.append((word("environment (both sides): "), *_environment(head)))
    else:
        for role, env in (("head", head), ("baseline", base)):
            if env is not None:
                lines.append((word(f"{role} environment: "), *_environment(env)))
    loads = {"head": verdict.head.topology, "baseline": verdict.base.topology if verdict.base is not None else None}
    if loads["head"] and loads["head"] == loads["baseline"]:
        return [*lines, (word("load (both sides) from "), field(loads["head"], textsafety.TEXT_CHARS))]
    return lines + [(word(f"{role} load from "), field(load, textsafety.TEXT_CHARS))
                    for role, load in loads.items() if load]


def margins_text(margins: dict[str, float]) -> list[Part]:
    """``failure_rate 1 pp, p50 5 %, p95 10 %``: margins by metric name, sorted."""
    parts: list[Part] = []
    for i, (metric, margin) in enumerate(sorted(margins.items())):
        parts += [*([word(", ")] if i else []), field(metric, textsafety.NAME_CHARS),
                  word(f" {format_margin(metric, margin)}")]
    return parts


def provenance_lines(verdict: Verdict) -> list[Line]:
    """How the verdict was reached, a line per fact, in the order every report lists them."""
    now = verdict.created_at
    lines: list[Line] = [side_line("head", verdict.head, now)]
    if verdict.base is not None:
        lines.append(side_line("baseline", verdict.base, now))
    load = load_summary(verdict.load_parameters)
    lines.append((word("profile "), field(verdict.profile, textsafety.NAME_CHARS),
                  *((word(": "), field(load)) if load else ())))
    if verdict.sequential is not None:
        lines.append((word("same-job A/B: "), field(sequential_summary(verdict.sequential))))
    settings = verdict.settings
    lines.append((word(f"α = {settings.alpha:.4g} over {verdict.family_size} tests (Holm), "
                       f"{interval_level(settings.alpha)} % intervals; margins: "), *margins_text(settings.margins)))
    for endpoint, margins in sorted(settings.endpoint_margins.items()):
        lines.append((word("margins of "), field(endpoint, textsafety.ENDPOINT_CHARS), word(": "),
                      *margins_text(margins)))
    if reach := detectable_ranges(verdict):
        lines.append((word(f"smallest change these runs can call a regression (80 % power): {reach}"),))
    return lines + metric_gate_lines(verdict) + environment_lines(verdict)


def _per_request(series: str, value: float | None) -> str:
    if value is None:
        return "not recorded"
    if series.endswith("_bytes"):
        return f"{value / 1024:+,.1f} KiB"
    return f"{value:+.3g}"


def metric_gate_lines(verdict: Verdict) -> list[Line]:
    """Each service-metric gate: its growth per request on both sides, the limit, and whether it held."""
    lines: list[Line] = []
    for gate in verdict.metric_gates:
        held = strong("held") if gate.passed else strong("FAILED")
        if gate.limit is None:
            detail = [word(": "), field(gate.note)]
        else:
            detail = [word(f": {_per_request(gate.series, gate.head)} per request on the head (its smallest run) "
                           f"against {_per_request(gate.series, gate.base)} on the baseline (its largest), limit "
                           f"{_per_request(gate.series, gate.limit)}")]
        lines.append((word("service metric "), field(gate.series, textsafety.NAME_CHARS), word(" "), held, *detail))
    return lines


BASELINE_CHANGE_KINDS = {
    "accepted": ("accepts a new baseline", "the new baseline"),
    "expected": ("sets expectations", "the expectations"),
    "unreadable": ("changes a baseline file that cannot be read", "the change to it"),
}
"""What a change of each kind does to a pinned baseline, and what approving the pull request approves."""


def baseline_change_line(change: BaselineChange) -> Line:
    """``This change accepts a new baseline in `baselines/smoke.json` (profile smoke), accepted by …``."""
    does, approves = BASELINE_CHANGE_KINDS.get(change.kind, ("changes a baseline file", "the change to it"))
    parts: list[Part] = [strong(f"This change {does}"), word(" in "), code(change.file), word(" (profile "),
                         field(change.profile, textsafety.NAME_CHARS), word(")")]
    if change.kind not in BASELINE_CHANGE_KINDS:
        parts += [word(" of kind "), field(change.kind, textsafety.NAME_CHARS)]
    if change.accepted_by:
        parts += [word(", accepted by "), field(change.accepted_by, textsafety.NAME_CHARS)]
    if change.accepted_at:
        parts.append(word(f" on {change.accepted_at:%Y-%m-%d}"))
    if change.reason:
        parts += [word(": "), field(change.reason)]
    parts.append(word(f". Approving this pull request approves {approves}."))
    return tuple(parts)


GATE_CHANGES_LINE: Line = (strong("This change edits the gate's own inputs"),
                           word(" (against the merge-base with the main branch); approving it approves them too:"))


def gate_change_line(change: GateInputChange) -> Line:
    """``config `perfgate.toml` modified: compare.margins.p50``: one changed input of the gate."""
    parts: list[Part] = [word(f"{change.what} "), code(change.path), word(f" {change.kind}")]
    if change.renamed_from:
        parts += [word(" from "), code(change.renamed_from)]
    if change.detail:
        parts += [word(": "), field(change.detail)]
    return tuple(parts)


# -- failures and notices ---------------------------------------------------------------------------------

FAILURE_KIND_CHARS = 80
"""A failure kind as shown: the service's own words, cut short."""


def failure_kinds_text(kinds: list[FailureKind]) -> list[Part]:
    """``503 Service Unavailable ×41, ConnectionResetError ×3``."""
    parts: list[Part] = []
    for i, k in enumerate(kinds):
        parts += [*([word(", ")] if i else []), field(k.kind, FAILURE_KIND_CHARS), word(f" ×{k.count}")]
    return parts


def endpoint_lines(endpoint: EndpointVerdict) -> list[Line]:
    """Why an endpoint was not decided, and what its failures were when they rose."""
    name = field(endpoint.endpoint, textsafety.ENDPOINT_CHARS)
    lines: list[Line] = []
    if endpoint.reasons:
        reasons: list[Part] = []
        for i, reason in enumerate(endpoint.reasons):
            reasons += [*([word("; ")] if i else []), field(reason)]
        lines.append((name, word(": "), *reasons))
    if endpoint.top_failures:
        lines.append((name, word(": failures rose; most frequent: "), *failure_kinds_text(endpoint.top_failures)))
    return lines


def budget_note_lines(verdict: Verdict) -> list[Line]:
    """Why failed budgets have no value (their pattern matches no endpoint), once per pattern."""
    seen: dict[str, str] = {}
    for budget in verdict.budgets:
        if not budget.passed and budget.note and budget.endpoint not in seen:
            seen[budget.endpoint] = budget.note
    return [(field(endpoint, textsafety.ENDPOINT_CHARS), word(": "), field(note)) for endpoint, note in seen.items()]


def check_lines(verdict: Verdict) -> list[Line]:
    """``Correctness check failed: no overselling (2 of 5 runs): stock went below zero``."""
    return [(strong("Correctness check failed:"), word(" "), field(c.name, textsafety.NAME_CHARS),
             word(f" ({c.failures} of {c.runs} runs)"), *((word(": "), field(c.message)) if c.message else ()))
            for c in verdict.checks if not c.passed]


def reason_lines(verdict: Verdict) -> list[Line]:
    """Why the comparison is invalid (each reason once, those the headline says left out)."""
    return [(field(reason),) for reason in distinct_reasons(verdict)]


def note_lines(verdict: Verdict) -> list[Line]:
    return [(word("Note: "), field(note)) for note in verdict.notes]

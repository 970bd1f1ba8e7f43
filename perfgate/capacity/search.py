"""The capacity search: up geometrically until an objective breaks, then bisect the knee, several times over.

It knows nothing of Locust: it asks a ``measure(rate, repeat)`` callable for steps, so it is tested on synthetic
services. A step whose generator could not offer the rate (invalid) is measured once more; invalid again, the
search stops there and says so: an invalid step is never taken as the service's limit.

The estimate is the geometric mean of the refinements' own estimates (each the centre, in log space, of its final
bracket, whose ends it measured itself); the interval is the wider of a t-interval over those estimates and the
span of their brackets, so that it holds the search's resolution even when the refinements agree.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from scipy import stats

from perfgate.records import MAX_CAPACITY_STEPS, CapacityStep

INTERVAL_LEVEL = 0.90
"""The capacity interval's level, as latency changes' intervals."""


@dataclass(frozen=True)
class SearchPlan:
    """Where the search starts, how fast it climbs and how finely it refines."""

    start: float = 10.0
    """The first rate offered, iterations per second."""
    growth: float = 1.5
    """Each step of the climb offers this many times the previous one."""
    max_rate: float = 2000.0
    """The climb stops here: a service meeting every objective at this rate has a capacity above it."""
    repeats: int = 3
    """Refinements of the knee, each a bisection from the climb's bracket; their spread makes the interval."""
    resolution: float = 0.05
    """A refinement stops when its bracket's high end is within this share of its low end."""
    max_steps: int = 60


@dataclass
class SearchOutcome:
    steps: list[CapacityStep] = field(default_factory=list)
    capacity: float | None = None
    low: float | None = None
    high: float | None = None
    repeats: list[float] = field(default_factory=list)
    brackets: list[tuple[float, float]] = field(default_factory=list)
    first_broken: str | None = None
    valid: bool = True
    reasons: list[str] = field(default_factory=list)


Measure = Callable[[float, int], CapacityStep]


class _StepInvalid(Exception):
    def __init__(self, step: CapacityStep) -> None:
        self.step = step


def search(plan: SearchPlan, measure: Measure) -> SearchOutcome:
    """Find the highest rate whose step meets every objective."""
    outcome = SearchOutcome()
    budget = min(plan.max_steps, MAX_CAPACITY_STEPS)

    def step(rate: float, repeat: int) -> CapacityStep:
        for _ in range(2):
            if len(outcome.steps) >= budget:
                raise _OutOfSteps
            measured = measure(round(rate, 3), repeat)
            outcome.steps.append(measured)
            if measured.valid:
                return measured
        raise _StepInvalid(measured)

    try:
        low, high = _climb(plan, step, outcome)
        if low is None or high is None:
            return outcome
        brackets = []
        for repeat in range(1, plan.repeats + 1):
            # Each refinement's bracket shifted by its own fraction of the resolution: their midpoints differ, so
            # that their estimates spread as the knee does instead of landing on one grid.
            shift = (1 + plan.resolution) ** ((repeat - 0.5) / plan.repeats - 0.5)
            brackets.append(_refine(plan, step, low * shift, high * shift, repeat))
    except _StepInvalid as invalid:
        passed = [s.offered for s in outcome.steps if s.passed]
        at_least = f"; it met every objective up to {max(passed):g}/s" if passed else ""
        reason = invalid.step.invalid_reasons[0] if invalid.step.invalid_reasons else "invalid"
        outcome.valid = False
        outcome.low = max(passed) if passed else None
        outcome.reasons.append(f"the step at {invalid.step.offered:g}/s was invalid twice ({reason}): the "
                               f"service's capacity there is unknown{at_least}")
        return outcome
    except _OutOfSteps:
        outcome.valid = False
        outcome.reasons.append(f"the search used its {budget} steps before it finished; raise the resolution "
                               "(--resolution) or lower --repeats")
        return outcome
    estimate, low_end, high_end = capacity_interval(brackets)
    outcome.capacity, outcome.low, outcome.high = estimate, low_end, high_end
    outcome.repeats = [round(math.sqrt(a * b), 3) for a, b in brackets]
    outcome.brackets = [(round(a, 3), round(b, 3)) for a, b in brackets]
    return outcome


class _OutOfSteps(Exception):
    pass


def _climb(plan: SearchPlan, step: Callable[[float, int], CapacityStep],
           outcome: SearchOutcome) -> tuple[float | None, float | None]:
    rate, low = plan.start, None
    while True:
        measured = step(rate, 0)
        if measured.broken:
            outcome.first_broken = measured.broken[0]
            if low is None:
                outcome.valid = False
                outcome.high = rate
                outcome.reasons.append(f"the first step, {rate:g}/s, already broke {measured.broken[0]}: the "
                                       "capacity is below it; lower --start-rate")
                return None, None
            return low, rate
        low = rate
        if rate >= plan.max_rate:
            outcome.valid = False
            outcome.low = rate
            outcome.reasons.append(f"every objective held up to {rate:g}/s, the most the search offers: the "
                                   "capacity is above it; raise --max-rate")
            return None, None
        rate = min(rate * plan.growth, plan.max_rate)


def _refine(plan: SearchPlan, step: Callable[[float, int], CapacityStep], low: float, high: float,
            repeat: int) -> tuple[float, float]:
    """Bisect ``[low, high]`` (log scale) to the resolution. An end this refinement never measured itself (the
    climb's, or one noise put there) is measured before it is believed, and the bracket moves a growth step past
    it when it does not hold: one noisy step of the climb does not fence the refinements in."""
    passed = broke = False
    while True:
        while high / low > 1 + plan.resolution:
            middle = math.sqrt(low * high)
            if step(middle, repeat).passed:
                low, passed = middle, True
            else:
                high, broke = middle, True
        if not passed:
            if step(low, repeat).passed:
                passed = True
            else:
                low, high, broke = low / plan.growth, low, True
                continue
        if not broke:
            if step(high, repeat).passed:
                low, high, passed = high, high * plan.growth, True
                continue
            broke = True
        return low, high


def capacity_interval(brackets: list[tuple[float, float]]) -> tuple[float, float, float]:
    """The estimate and its interval from the refinements' final brackets ``(passed, broke)``."""
    logs = [(math.log(a) + math.log(b)) / 2 for a, b in brackets]
    centre = statistics.fmean(logs)
    low, high = min(math.log(a) for a, _ in brackets), max(math.log(b) for _, b in brackets)
    if len(logs) > 1:
        half = stats.t.ppf((1 + INTERVAL_LEVEL) / 2, len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
        low, high = min(low, centre - half), max(high, centre + half)
    return round(math.exp(centre), 3), round(math.exp(low), 3), round(math.exp(high), 3)

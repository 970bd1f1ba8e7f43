"""The service's own metrics judged head against base: growth per request during a run.

Resident memory that grows with every request and never comes back is a leak; a counter that grows faster per
request (database queries, cache misses) is more work per request. Each is a run-level value (the series'
growth over the run divided by the requests Locust counted), and the gate fails only when **every** head run
grew more than the baseline's **largest** run, plus the margin (relative) and the floor (absolute): a few runs
cannot carry a test with an interval, so the rule is the conservative one. A series a side did not record fails
the gate with a note: a gate that cannot tell says so.
"""

from __future__ import annotations

from perfgate.config.schema import MetricGate
from perfgate.decide.sides import Side
from perfgate.decide.verdict import MetricGateResult


def judge_metric_gates(base: Side | None, head: Side, gates: dict[str, MetricGate]) -> list[MetricGateResult]:
    """One result per configured series; none without a baseline."""
    if base is None:
        return []
    results = []
    for name, gate in sorted(gates.items()):
        based = [r.metric_growth[name] for r in base.valid_runs if name in r.metric_growth]
        headed = [r.metric_growth[name] for r in head.valid_runs if name in r.metric_growth]
        if not based or not headed:
            where = " and ".join(label for label, values in (("baseline", based), ("head", headed)) if not values)
            results.append(MetricGateResult(
                series=name, base=max(based) if based else None, head=min(headed) if headed else None, limit=None,
                passed=False, note=f"not recorded on the {where}: record runs with --metrics-url (or [metrics]) "
                                   f"on an endpoint that exposes {name}"))
            continue
        top = max(based)
        limit = top + abs(top) * gate.margin + gate.floor
        results.append(MetricGateResult(series=name, base=top, head=min(headed), limit=limit,
                                        passed=min(headed) <= limit))
    return results

"""The headline of an INCONCLUSIVE verdict says what the data could see, per undecided endpoint."""

from __future__ import annotations

from perfgate.decide.rules import headline
from perfgate.decide.verdict import EndpointVerdict, Metric, MetricTest, Outcome


def _test(metric: Metric, detectable: float | None, outcome: Outcome = Outcome.INCONCLUSIVE) -> MetricTest:
    return MetricTest(metric=metric, method="paired", outcome=outcome, base_value=10.0, head_value=10.1,
                      change=0.01, ci_low=-0.1,
                      ci_high=0.12, confidence=0.95, p_value=0.4, p_adjusted=0.9, margin=0.05,
                      detectable=detectable, base_runs=3, head_runs=3)


def _endpoint(name: str, *tests: MetricTest, outcome: Outcome = Outcome.INCONCLUSIVE) -> EndpointVerdict:
    return EndpointVerdict(endpoint=name, verdict=outcome, tests=list(tests))


def _headline(*endpoints: EndpointVerdict) -> str:
    return headline(Outcome.INCONCLUSIVE, list(endpoints), [], [], [])


def test_each_undecided_endpoint_is_named_with_the_change_its_p50_could_see() -> None:
    text = _headline(_endpoint("GET /items", _test(Metric.P95, 0.11), _test(Metric.P50, 0.043)),
                     _endpoint("GET /ok", _test(Metric.P50, 0.02), outcome=Outcome.UNCHANGED),
                     _endpoint("POST /orders", _test(Metric.P50, 0.124)))
    assert text.startswith("INCONCLUSIVE: 2 of 3 endpoint(s) undecided")
    assert text.endswith("; these runs could see changes of 4 % or more on GET /items, 12 % on POST /orders (p50)")


def test_without_a_p50_the_smallest_latency_test_is_named_with_its_metric() -> None:
    text = _headline(_endpoint("GET /a", _test(Metric.P99, 0.5), _test(Metric.P95, 0.2)),
                     _endpoint("GET /b", _test(Metric.P50, 0.07)))
    assert text.endswith("could see changes of 20 % or more (p95) on GET /a, 7 % (p50) on GET /b")


def test_many_endpoints_are_bounded_and_none_detectable_says_nothing() -> None:
    many = [_endpoint(f"GET /e{i}", _test(Metric.P50, 0.1 + i / 100)) for i in range(7)]
    text = _headline(*many)
    assert text.endswith("on GET /e2 and 4 more endpoint(s) (p50)") and "GET /e3" not in text
    assert "could see" not in _headline(_endpoint("GET /x", _test(Metric.P50, None)),
                                        _endpoint("GET /y", _test(Metric.FAILURE_RATE, 0.01)))


def test_the_undecided_test_is_named_not_a_p50_already_judged_unchanged() -> None:
    text = _headline(_endpoint("POST /notes", _test(Metric.P50, 0.12, Outcome.UNCHANGED), _test(Metric.P99, 0.31),
                               _test(Metric.P95, 0.2, Outcome.UNCHANGED)),
                     _endpoint("GET /b", _test(Metric.P50, 0.07)))
    assert text.endswith("could see changes of 31 % or more (p99) on POST /notes, 7 % (p50) on GET /b")
    # an endpoint held back by a test other than latency (throughput, say) still gets its latency reach
    text = _headline(_endpoint("GET /t", _test(Metric.P50, 0.09, Outcome.UNCHANGED),
                               _test(Metric.THROUGHPUT, 0.2)))
    assert text.endswith("could see changes of 9 % or more on GET /t (p50)")

"""From a raw recording to what a run measured: warm-up, failures by kind, series, validity."""

from __future__ import annotations

from perfgate.config import ResolvedProfile
from perfgate.measure.contract import EndpointRecording, Recording, RecordingMeta
from perfgate.measure.summary import measure

T0 = 1_000_000.0


def profile(**overrides) -> ResolvedProfile:
    values = dict(name="smoke", locustfile="/x.py", host="http://127.0.0.1:1", users=2, spawn_rate=2,
                  run_time=12, warmup=2)
    return ResolvedProfile(**{**values, **overrides})


def endpoint(name: str, starts: list[float], latencies: list[float], outcomes: list[int] | None = None,
             kinds: list[str] | None = None, request_type: str = "GET") -> EndpointRecording:
    recording = EndpointRecording(request_type, name, kinds=list(kinds or []))
    recording.start_times.extend(T0 + s for s in starts)
    recording.latencies_ms.extend(latencies)
    recording.outcomes.extend(outcomes or [0] * len(starts))
    return recording


def recording(*endpoints: EndpointRecording, **meta) -> Recording:
    count = sum(len(e) for e in endpoints)
    facts = {"test_start": T0, "test_stop": T0 + 12, "locust_request_count": count, **meta}
    return Recording(meta=RecordingMeta.from_dict(facts),
                     endpoints=list(endpoints))


def test_warm_up_is_cut_by_start_time_and_counts_still_add_up() -> None:
    starts = [0.5, 1.5, 2.0, 2.5, 5.2, 5.7, 11.9]
    rec = recording(endpoint("/a", starts, [10, 20, 30, 40, 50, 60, 70]))
    measured = measure(rec, profile())
    (a,) = measured.endpoints
    assert a.stats.count == 5 and measured.warmup_excluded == 2  # 0.5 s and 1.5 s are in the warm-up
    assert (a.stats.min, a.stats.max, a.stats.p50) == (30, 70, 50)
    assert measured.duration_s == 10 and measured.achieved_rps == 0.5
    assert [(b.t, b.requests) for b in a.series] == [(0, 2), (3, 2), (9, 1)]
    assert measured.invalid_reasons == []


def test_failures_by_kind_exclude_the_warm_up_and_latency_is_of_successes() -> None:
    rec = recording(endpoint("/a", [0.1, 3, 4, 5, 6], [1, 100, 5, 100, 7], [1, 1, 0, 2, 0],
                             kinds=["HTTP 500", "timeout"]))
    (a,) = measure(rec, profile()).endpoints
    assert a.stats.failures == 2 and a.stats.failures_by_type == {"HTTP 500": 1, "timeout": 1}
    assert (a.stats.min, a.stats.max) == (5, 7)  # the fast and slow failures do not count as latency
    assert a.histogram.count == 2


def test_checks_are_not_endpoints() -> None:
    rec = recording(endpoint("/a", [3, 4], [5, 6]),
                    endpoint("no overselling", [11], [0], [1], kinds=["AssertionError: 7 orders"],
                             request_type="CHECK"))
    measured = measure(rec, profile())
    assert [e.stats.key for e in measured.endpoints] == ["GET /a"]
    assert [(c.name, c.passed, c.message) for c in measured.checks] == [
        ("no overselling", False, "AssertionError: 7 orders")]
    assert measured.recorded_request_count == 3


def test_invalid_runs_say_why() -> None:
    lost = measure(recording(endpoint("/a", [3, 4], [5, 6]), locust_request_count=5), profile())
    assert "perfgate recorded 2 requests but Locust counted 5" in lost.invalid_reasons[0]
    storm = measure(recording(endpoint("/a", [3, 4], [5, 6], [1, 0], kinds=["x"])), profile())
    assert "1 of 2 measured requests failed" in storm.invalid_reasons[0]
    hot = measure(recording(endpoint("/a", [3, 4], [5, 6]), cpu_warning=True), profile())
    assert "load generator's CPU went above 90 %" in hot.invalid_reasons[0]
    slow = measure(recording(endpoint("/a", [3, 4], [5, 6])), profile(target_rps=10))
    assert "achieved 0.2 requests/s, below 90% of the target 10/s" in slow.invalid_reasons[0]
    empty = measure(recording(endpoint("/a", [0.5], [5])), profile())
    assert "no request was measured after the warm-up" in empty.invalid_reasons[0]

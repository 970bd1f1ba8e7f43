"""A same-moment recording split by side: one run per side, blocks on one grid, the duet's own validity."""

from __future__ import annotations

import numpy as np
import pytest
from measure.test_measure import T0, profile

from perfgate.errors import ConfigError
from perfgate.measure.contract import CHECK_REQUEST_TYPE, EndpointRecording, Recording, RecordingMeta
from perfgate.measure.duet import block_length, check_duet_profile, cpu_sets, measure_duet, split_by_side

LABELS = ["base", "head"]


def _side(side: str, name: str, n: int, latency: float, *, request_type: str = "GET",
          outcomes: list[int] | None = None) -> EndpointRecording:
    """``n`` requests spread evenly over the 16-s test."""
    recording = EndpointRecording(request_type, name, side=side, kinds=["HTTP 500"] if outcomes else [])
    recording.start_times.extend(T0 + 16 * i / n for i in range(n))
    recording.latencies_ms.extend(latency * (1 + 0.1 * (i % 7)) for i in range(n))
    recording.outcomes.extend(outcomes or [0] * n)
    return recording


def _recording(*endpoints: EndpointRecording, lost: int = 0) -> Recording:
    count = sum(len(e) for e in endpoints) + lost
    return Recording(meta=RecordingMeta.from_dict({"test_start": T0, "test_stop": T0 + 16,
                                                   "locust_request_count": count}), endpoints=list(endpoints))


def test_each_side_becomes_a_run_with_blocks_aligned_to_the_other_sides() -> None:
    rec = _recording(_side("base", "/a", 800, 10.0), _side("head", "/a", 800, 11.0))
    measured = measure_duet(rec, profile(run_time=16), LABELS)
    base, head = measured["base"], measured["head"]
    assert base.invalid_reasons == [] and head.invalid_reasons == []
    (a_base,), (a_head,) = base.endpoints, head.endpoints
    assert a_base.stats.count == a_head.stats.count == 700  # the 2-s warm-up cut on both sides alike
    assert a_base.block_s == a_head.block_s == 1.0  # 50 requests a second: the shortest block holds 30
    assert [b.t for b in a_base.blocks] == [b.t for b in a_head.blocks] == [float(t) for t in range(14)]
    ratios = [h.p50 / b.p50 for b, h in zip(a_base.blocks, a_head.blocks, strict=True)]
    assert ratios == pytest.approx([1.1] * 14, rel=0.05)
    assert sum(b.requests for b in a_head.blocks) == 700


def test_blocks_lengthen_for_rare_endpoints_and_shorten_for_short_runs() -> None:
    assert block_length(rate_per_s=50, duration_s=60) == 1.0
    assert block_length(rate_per_s=5, duration_s=60) == 5.0  # 30 requests a block
    assert block_length(rate_per_s=1, duration_s=60) == 5.0  # but at least 12 blocks in the window
    assert block_length(rate_per_s=100, duration_s=6) == 0.5  # a window under 12 s: blocks under 1 s


def test_a_side_that_starved_is_invalid_and_lost_requests_count_on_both() -> None:
    rec = _recording(_side("base", "/a", 600, 10.0), _side("head", "/a", 200, 10.0))
    measured = measure_duet(rec, profile(), LABELS)
    assert measured["base"].invalid_reasons == []
    assert any("head side served" in r and "starved" in r for r in measured["head"].invalid_reasons)

    sides, _ = split_by_side(_recording(_side("base", "/a", 10, 1.0), _side("head", "/a", 10, 1.0), lost=3),
                             LABELS)
    assert [s.meta.locust_request_count for s in sides.values()] == [13, 13]  # each side misses the 3


def test_requests_without_a_side_make_both_invalid_and_checks_without_one_count_on_both() -> None:
    check = EndpointRecording(CHECK_REQUEST_TYPE, "stock never negative")
    check.start_times.append(T0 + 5)
    check.latencies_ms.append(0.0)
    check.outcomes.append(0)
    rec = _recording(_side("base", "/a", 100, 1.0), _side("head", "/a", 100, 1.0), _side("", "/raw", 10, 1.0),
                     check)
    measured = measure_duet(rec, profile(), LABELS)
    for m in measured.values():
        assert any("GET /raw carry no side" in r for r in m.invalid_reasons)
        assert [c.name for c in m.checks] == ["stock never negative"]


def test_cpus_are_split_only_from_four_on_and_load_shapes_are_refused() -> None:
    assert cpu_sets(2) is None
    assert cpu_sets(4) == (frozenset({0}), frozenset({1}), frozenset({2, 3}))
    first, second, locust = cpu_sets(16)  # type: ignore[misc]
    assert len(first) == len(second) == 4 and not first & second and len(locust) == 8
    with pytest.raises(ConfigError, match="step load"):
        check_duet_profile(profile(step={"step_users": 1, "step_time": 5}))
    assert np.isfinite(block_length(0, 12))


def test_users_that_workers_cannot_split_evenly_are_refused_and_uneven_sides_are_invalid() -> None:
    # 2 × 5 users on 4 worker processes: Locust gives 3, 3, 2, 2, and each binds its own alternately.
    with pytest.raises(ConfigError, match=r"pass --users 6 \(twice the users must divide by 4\)"):
        check_duet_profile(profile(users=5, expect_workers=4))
    check_duet_profile(profile(users=6, expect_workers=4))
    check_duet_profile(profile(users=3, expect_workers=2))  # 3 each: the second worker starts at the other side
    with pytest.raises(ConfigError, match="divide by 3"):
        check_duet_profile(profile(users=4, processes=3))

    rec = _recording(_side("base", "/a", 800, 10.0), _side("head", "/a", 800, 10.0))
    rec.meta.side_users = {"base": 6, "head": 4}
    measured = measure_duet(rec, profile(run_time=16), LABELS)
    for side in LABELS:
        assert any("bound unevenly to the sides (base 6, head 4)" in r for r in measured[side].invalid_reasons)
    rec.meta.side_users = {"base": 5, "head": 5}
    assert all(m.invalid_reasons == [] for m in measure_duet(rec, profile(run_time=16), LABELS).values())
    # The header of a recording keeps the counts.
    assert RecordingMeta.from_dict(rec.meta.to_dict()).side_users == {"base": 5, "head": 5}

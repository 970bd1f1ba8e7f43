"""Tests for perfgate.samples: accuracy against numpy, exact merge, codec, Mann-Whitney vs scipy."""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import mannwhitneyu

from perfgate.samples import (
    GAMMA,
    RELATIVE_ACCURACY,
    ZERO_THRESHOLD_MS,
    LatencyHistogram,
    MannWhitneyResult,
    SampleDecodeError,
    mann_whitney_u,
)

QUANTILE_GRID = (0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 1.0)
KINDS = ("lognormal", "lognormal_tail", "uniform", "duplicates", "single", "wide")

SETTINGS = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def make_latencies(kind: str, seed: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "lognormal":
        return rng.lognormal(np.log(20.0), 0.5, size)
    if kind == "lognormal_tail":
        x = rng.lognormal(np.log(5.0), 1.0, size)
        tail = rng.random(size) < 0.01
        return np.where(tail, x * 10.0, x)
    if kind == "uniform":
        return rng.uniform(1.0, 500.0, size)
    if kind == "duplicates":
        return rng.choice(np.array([0.8, 3.0, 3.0001, 12.5, 250.0]), size)
    if kind == "single":
        return np.full(size, rng.uniform(0.05, 60_000.0))
    if kind == "wide":
        return np.exp(rng.uniform(np.log(0.05), np.log(60_000.0), size))
    raise AssertionError(kind)


@st.composite
def latency_arrays(draw: st.DrawFn, min_size: int = 1, max_size: int = 3000) -> np.ndarray:
    kind = draw(st.sampled_from(KINDS))
    seed = draw(st.integers(0, 2**32 - 1))
    size = draw(st.integers(min_size, max_size))
    return make_latencies(kind, seed, size)


float_lists = st.lists(
    st.floats(min_value=0.05, max_value=60_000.0, allow_nan=False), min_size=1, max_size=200
)


def representatives(h: LatencyHistogram) -> np.ndarray:
    """Every value replaced by its bucket representative, sorted (zero bucket -> 0)."""
    reps = 2.0 * GAMMA ** h.keys.astype(np.float64) / (GAMMA + 1.0)
    return np.concatenate((np.zeros(h.zero_count), np.repeat(reps, h.counts)))


def assert_within_accuracy(estimate: float, exact: float, absolute: float = 1e-9) -> None:
    # A hair of float slack: a value on a bucket boundary may land in either neighbour.
    tolerance = RELATIVE_ACCURACY * (1 + 1e-9) * abs(exact) + absolute
    assert abs(estimate - exact) <= tolerance, (estimate, exact, abs(estimate / exact - 1))


# -- accuracy ---------------------------------------------------------------


def test_gamma_matches_relative_accuracy() -> None:
    assert RELATIVE_ACCURACY == 0.001
    assert GAMMA == pytest.approx((1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY), rel=1e-15)


@SETTINGS
@given(latency_arrays())
def test_quantiles_within_relative_accuracy(values: np.ndarray) -> None:
    h = LatencyHistogram.from_values(values)
    assert h.count == values.size
    estimates = h.quantiles(QUANTILE_GRID)
    for q, estimate in zip(QUANTILE_GRID, estimates, strict=True):
        exact = float(np.quantile(values, q))
        assert_within_accuracy(estimate, exact)
        assert h.quantile(q) == estimate


@SETTINGS
@given(float_lists)
def test_quantiles_within_relative_accuracy_arbitrary_floats(values: list[float]) -> None:
    h = LatencyHistogram.from_values(values)
    for q, estimate in zip(QUANTILE_GRID, h.quantiles(QUANTILE_GRID), strict=True):
        assert_within_accuracy(estimate, float(np.quantile(values, q)))


@SETTINGS
@given(latency_arrays(max_size=500), st.integers(1, 50))
def test_zero_values_have_absolute_error_below_threshold(values: np.ndarray, zeros: int) -> None:
    data = np.concatenate((values, np.zeros(zeros), np.full(zeros, ZERO_THRESHOLD_MS / 2)))
    h = LatencyHistogram.from_values(data)
    assert h.zero_count == 2 * zeros
    assert h.min() == 0.0
    for q, estimate in zip(QUANTILE_GRID, h.quantiles(QUANTILE_GRID), strict=True):
        assert_within_accuracy(estimate, float(np.quantile(data, q)), absolute=ZERO_THRESHOLD_MS)


@SETTINGS
@given(latency_arrays())
def test_min_max_mean_within_relative_accuracy(values: np.ndarray) -> None:
    h = LatencyHistogram.from_values(values)
    assert_within_accuracy(h.min(), float(values.min()))
    assert_within_accuracy(h.max(), float(values.max()))
    assert_within_accuracy(h.mean(), float(values.mean()))


def test_bucket_keys_are_sorted_positive_counts() -> None:
    h = LatencyHistogram.from_values(make_latencies("wide", 7, 5000))
    assert h.keys.dtype == np.int64 and h.counts.dtype == np.int64
    assert np.all(np.diff(h.keys) > 0)
    assert np.all(h.counts > 0)
    assert int(h.counts.sum()) == 5000


def test_empty_and_invalid_inputs() -> None:
    empty = LatencyHistogram.empty()
    assert empty.count == 0
    assert empty == LatencyHistogram.from_values([])
    for call in (lambda: empty.quantile(0.5), empty.min, empty.max, empty.mean):
        with pytest.raises(ValueError):
            call()
    h = LatencyHistogram.from_values([1.0, 2.0])
    for q in (-0.01, 1.01, float("nan")):
        with pytest.raises(ValueError):
            h.quantile(q)
    for bad in ([1.0, -1.0], [float("nan")], [float("inf")]):
        with pytest.raises(ValueError):
            LatencyHistogram.from_values(bad)


def test_histogram_is_immutable() -> None:
    h = LatencyHistogram.from_values([1.0, 2.0, 3.0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        h.zero_count = 3  # type: ignore[misc]
    with pytest.raises(ValueError):
        h.counts[0] = 10


# -- merge ------------------------------------------------------------------


@SETTINGS
@given(latency_arrays(), latency_arrays())
def test_merge_is_exact(x: np.ndarray, y: np.ndarray) -> None:
    hx, hy = LatencyHistogram.from_values(x), LatencyHistogram.from_values(y)
    whole = LatencyHistogram.from_values(np.concatenate((x, y)))
    assert hx.merge(hy) == whole
    assert hy.merge(hx) == whole
    assert hx.merge(LatencyHistogram.empty()) == hx
    assert whole.count == x.size + y.size


@SETTINGS
@given(latency_arrays(max_size=5000), st.integers(1, 20), st.integers(0, 2**32 - 1))
def test_merge_all_equals_histogram_of_everything(
    values: np.ndarray, parts: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    values = np.concatenate((values, np.zeros(rng.integers(0, 3))))
    cuts = np.sort(rng.integers(0, values.size + 1, parts - 1))
    chunks = np.split(rng.permutation(values), cuts)
    merged = LatencyHistogram.merge_all(LatencyHistogram.from_values(c) for c in chunks)
    assert merged == LatencyHistogram.from_values(values)


def test_merge_all_of_nothing_is_empty() -> None:
    assert LatencyHistogram.merge_all([]) == LatencyHistogram.empty()


# -- serialization ----------------------------------------------------------


@SETTINGS
@given(latency_arrays(min_size=0), st.integers(0, 5))
def test_round_trip(values: np.ndarray, zeros: int) -> None:
    h = LatencyHistogram.from_values(np.concatenate((values, np.zeros(zeros))))
    blob = h.to_bytes()
    assert blob[:3] == b"PGH"
    decoded = LatencyHistogram.from_bytes(blob)
    assert decoded == h
    assert decoded.to_bytes() == blob


def test_round_trip_extreme_values() -> None:
    h = LatencyHistogram(
        keys=np.array([-500_000, -1, 0, 1, 300, 900_000], dtype=np.int64),
        counts=np.array([1, 2**40, 127, 128, 16_384, 2**62], dtype=np.int64),
        zero_count=2**20,
    )
    assert LatencyHistogram.from_bytes(h.to_bytes()) == h
    for small in (LatencyHistogram.empty(), LatencyHistogram.from_values([0.0])):
        assert LatencyHistogram.from_bytes(small.to_bytes()) == small
    assert LatencyHistogram.from_bytes(bytearray(h.to_bytes())) == h


def test_blob_is_compact_for_many_values() -> None:
    values = make_latencies("lognormal_tail", 3, 200_000)
    blob = LatencyHistogram.from_values(values).to_bytes()
    assert len(blob) < 64 * 1024


def _blob_with_payload(payload: bytes) -> bytes:
    return b"PGH\x01" + zlib.compress(payload)


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"PG",
        b"PGH",
        b"garbage that is not a histogram",
        b"XYZ\x01" + zlib.compress(b"\x00\x00"),  # wrong magic
        b"PGH\x02" + zlib.compress(b"\x00\x00"),  # unknown version
        b"PGH\x01not zlib at all",
        _blob_with_payload(b""),  # no header varints
        _blob_with_payload(b"\x00\x02\x00\x01\x05"),  # one count missing
        _blob_with_payload(b"\x00\x01\x00\x05\x07"),  # one value too many
        _blob_with_payload(b"\x00\x02\x00\x00\x05\x05"),  # zero delta: keys not increasing
        _blob_with_payload(b"\x00\x01\x00\x00"),  # zero count
        _blob_with_payload(b"\x00\x01\x00\x85"),  # ends inside a varint
        _blob_with_payload(b"\x00\x01\x00" + b"\xff" * 9 + b"\x7f"),  # count overflows 64 bits
        _blob_with_payload(b"\x00\x01\x00" + b"\x80" * 9 + b"\x01"),  # count == 2**63
        _blob_with_payload(b"\x00\x01\xfe\xff\xff\x0f\x01"),  # key far out of range
        _blob_with_payload(b"\x00\x00") + b"trailing",
    ],
)
def test_decode_errors(blob: bytes) -> None:
    with pytest.raises(SampleDecodeError):
        LatencyHistogram.from_bytes(blob)


def test_decode_error_is_value_error_with_one_line_message() -> None:
    with pytest.raises(ValueError) as info:
        LatencyHistogram.from_bytes(b"PGH\x01\x78\x9c\x00")
    assert isinstance(info.value, SampleDecodeError)
    assert "\n" not in str(info.value)


def test_every_truncation_is_rejected() -> None:
    blob = LatencyHistogram.from_values(make_latencies("lognormal", 11, 2000)).to_bytes()
    for cut in range(len(blob)):
        with pytest.raises(SampleDecodeError):
            LatencyHistogram.from_bytes(blob[:cut])


@SETTINGS
@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_raise_anything_else(blob: bytes) -> None:
    for candidate in (blob, b"PGH\x01" + blob, b"PGH\x01" + zlib.compress(blob)):
        try:
            LatencyHistogram.from_bytes(candidate)
        except SampleDecodeError:
            pass


# -- Mann-Whitney -----------------------------------------------------------


def scipy_on_representatives(a: LatencyHistogram, b: LatencyHistogram):
    return mannwhitneyu(
        representatives(b),
        representatives(a),
        alternative="two-sided",
        use_continuity=True,
        method="asymptotic",
    )


@SETTINGS
@given(latency_arrays(max_size=400), latency_arrays(max_size=400))
def test_mann_whitney_matches_scipy_on_bucket_representatives(x: np.ndarray, y: np.ndarray) -> None:
    a, b = LatencyHistogram.from_values(x), LatencyHistogram.from_values(y)
    result = mann_whitney_u(a, b)
    reference = scipy_on_representatives(a, b)
    assert (result.n_a, result.n_b) == (x.size, y.size)
    assert result.u == pytest.approx(float(reference.statistic), rel=1e-12, abs=1e-12)
    assert result.p_value == pytest.approx(float(reference.pvalue), rel=1e-9, abs=1e-300)
    assert result.prob_superiority == pytest.approx(result.u / (x.size * y.size), rel=1e-12)


@SETTINGS
@given(st.integers(2, 120), st.integers(2, 120), st.floats(0.5, 2.0), st.integers(0, 2**32 - 1))
def test_mann_whitney_without_ties_matches_scipy_on_raw_values(
    n_a: int, n_b: int, scale: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    # Consecutive values 1 % apart never share a 0.2 %-wide bucket.
    values = scale * 1.01 ** rng.permutation(n_a + n_b)
    x, y = values[:n_a], values[n_a:]
    a, b = LatencyHistogram.from_values(x), LatencyHistogram.from_values(y)
    assert a.keys.size + b.keys.size == np.union1d(a.keys, b.keys).size == n_a + n_b
    result = mann_whitney_u(a, b)
    reference = mannwhitneyu(
        y, x, alternative="two-sided", use_continuity=True, method="asymptotic"
    )
    assert result.u == float(reference.statistic)
    assert result.p_value == pytest.approx(float(reference.pvalue), rel=1e-9)


@SETTINGS
@given(latency_arrays(max_size=300), latency_arrays(max_size=300))
def test_prob_superiority_counts_pairs(x: np.ndarray, y: np.ndarray) -> None:
    a, b = LatencyHistogram.from_values(x), LatencyHistogram.from_values(y)
    ra, rb = representatives(a), representatives(b)
    greater = np.count_nonzero(rb[:, None] > ra[None, :])
    ties = np.count_nonzero(rb[:, None] == ra[None, :])
    result = mann_whitney_u(a, b)
    assert result.u == greater + 0.5 * ties
    assert result.prob_superiority == pytest.approx((greater + 0.5 * ties) / (x.size * y.size))


def test_mann_whitney_a_a_is_not_significant() -> None:
    h = LatencyHistogram.from_values(make_latencies("lognormal_tail", 5, 20_000))
    result = mann_whitney_u(h, h)
    assert result.p_value > 0.99
    assert result.prob_superiority == 0.5


def test_mann_whitney_detects_clear_shift() -> None:
    base = make_latencies("lognormal", 1, 5000)
    slower = make_latencies("lognormal", 2, 5000) * 1.2
    h_base, h_slower = LatencyHistogram.from_values(base), LatencyHistogram.from_values(slower)
    result = mann_whitney_u(h_base, h_slower)
    assert result.p_value < 1e-12
    assert result.prob_superiority > 0.6
    reverse = mann_whitney_u(h_slower, h_base)
    assert reverse.prob_superiority == pytest.approx(1 - result.prob_superiority)
    assert reverse.p_value == pytest.approx(result.p_value, rel=1e-9)


def test_mann_whitney_degenerate_cases() -> None:
    h = LatencyHistogram.from_values([3.0, 3.0001])
    with pytest.raises(ValueError):
        mann_whitney_u(h, LatencyHistogram.empty())
    with pytest.raises(ValueError):
        mann_whitney_u(LatencyHistogram.empty(), h)
    tied = mann_whitney_u(h, LatencyHistogram.from_values([3.0] * 5))
    assert isinstance(tied, MannWhitneyResult)
    assert tied.p_value == 1.0
    assert tied.prob_superiority == 0.5
    zeros = mann_whitney_u(
        LatencyHistogram.from_values([0.0]), LatencyHistogram.from_values([0.0, 0.0])
    )
    assert zeros.p_value == 1.0

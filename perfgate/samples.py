"""Compact, mergeable per-endpoint latency distributions.

A run stores, for every endpoint, a sparse log-bucketed histogram (the
DDSketch construction) instead of the raw latencies.  A positive value ``x``
(milliseconds) goes to bucket ``k = ceil(log_gamma(x))``, which covers
``(GAMMA**(k-1), GAMMA**k]``; the bucket's representative
``2 * GAMMA**k / (GAMMA + 1)`` is within ``RELATIVE_ACCURACY`` (0.1 %) of
every value in it.  Because the sorted representatives are a monotone image of
the sorted values, every order statistic, and hence every interpolated
quantile, is within 0.1 % as well.

Why this rather than sorted, delta-encoded microseconds:

* the size is bounded by the number of distinct buckets (a few thousand for
  any realistic spread), independent of how many requests were made;
* merging runs, workers or time slices is exact: counts of equal keys add;
* the Mann-Whitney U test can be computed straight from bucket counts in
  O(distinct buckets), with the usual tie correction.

The price is that values falling into the same bucket (0.2 % wide) count as
ties in rank statistics.  For a performance gate that resolution is far below
run-to-run noise.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

RELATIVE_ACCURACY: float = 0.001
GAMMA: float = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
ZERO_THRESHOLD_MS: float = 1e-6
"""Values at or below this (including 0) are counted in ``zero_count``, represented by 0."""

_LOG_GAMMA = math.log(GAMMA)
_MAGIC = b"PGH"
_FORMAT_VERSION = 1
_MAX_PAYLOAD = 1 << 26  # decompression limit; real payloads are a few KB
# Any float64 above ZERO_THRESHOLD_MS maps to a key in about [-6908, 354891].
_KEY_LIMIT = 1 << 20
_VARINT_SHIFTS = np.arange(0, 64, 7, dtype=np.uint64)  # 10 groups of 7 bits


class SampleDecodeError(ValueError):
    """A serialized histogram is corrupt, truncated or of an unknown format."""


def _representatives(keys: np.ndarray) -> np.ndarray:
    return 2.0 * np.power(GAMMA, keys.astype(np.float64)) / (GAMMA + 1.0)


@dataclass(frozen=True, eq=False, repr=False)
class LatencyHistogram:
    """Sparse log-bucketed histogram of latencies in milliseconds."""

    keys: np.ndarray
    counts: np.ndarray
    zero_count: int = 0

    def __post_init__(self) -> None:
        keys = np.array(self.keys, dtype=np.int64).reshape(-1)
        counts = np.array(self.counts, dtype=np.int64).reshape(-1)
        zero_count = int(self.zero_count)
        if keys.shape != counts.shape:
            raise ValueError("keys and counts must have the same length")
        if np.any(np.diff(keys) <= 0):
            raise ValueError("keys must be strictly increasing")
        if np.any(counts <= 0) or zero_count < 0:
            raise ValueError("counts must be positive and zero_count non-negative")
        if keys.size and (keys[0] <= -_KEY_LIMIT or keys[-1] >= _KEY_LIMIT):
            raise ValueError("bucket key out of range")
        # Float sum as an overflow guard: the int64 sum would wrap silently.
        if float(counts.sum(dtype=np.float64)) + zero_count >= 2.0**63:
            raise ValueError("total count does not fit in 64 bits")
        keys.setflags(write=False)
        counts.setflags(write=False)
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "zero_count", zero_count)

    # -- construction -----------------------------------------------------

    @classmethod
    def empty(cls) -> LatencyHistogram:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64), 0)

    @classmethod
    def from_values(cls, values_ms: np.ndarray | Sequence[float]) -> LatencyHistogram:
        x = np.asarray(values_ms, dtype=np.float64).reshape(-1)
        if not np.all((x >= 0.0) & (x < np.inf)):
            raise ValueError("latencies must be finite and non-negative")
        positive = x[x > ZERO_THRESHOLD_MS]
        zero_count = x.size - positive.size
        if positive.size == 0:
            return cls(np.empty(0, np.int64), np.empty(0, np.int64), zero_count)
        raw = np.ceil(np.log(positive) / _LOG_GAMMA).astype(np.int64)
        # The key range is bounded (see _KEY_LIMIT), so counting with bincount
        # is O(n + range) and avoids the O(n log n) sort inside np.unique.
        low = int(raw.min())
        dense = np.bincount(raw - low)
        offsets = np.flatnonzero(dense)
        return cls(offsets.astype(np.int64) + low, dense[offsets].astype(np.int64), zero_count)

    # -- merging ----------------------------------------------------------

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        return LatencyHistogram.merge_all((self, other))

    @classmethod
    def merge_all(cls, hists: Iterable[LatencyHistogram]) -> LatencyHistogram:
        hists = list(hists)
        if not hists:
            return cls.empty()
        keys, inverse = np.unique(np.concatenate([h.keys for h in hists]), return_inverse=True)
        counts = np.zeros(keys.size, np.int64)
        np.add.at(counts, inverse, np.concatenate([h.counts for h in hists]))
        return cls(keys, counts, sum(h.zero_count for h in hists))

    # -- statistics -------------------------------------------------------

    @property
    def count(self) -> int:
        return int(self.counts.sum()) + self.zero_count

    def _ranked(self) -> tuple[np.ndarray, np.ndarray]:
        """Representatives in increasing order (zero bucket first) and cumulative counts."""
        reps = _representatives(self.keys)
        counts = self.counts
        if self.zero_count:
            reps = np.concatenate(([0.0], reps))
            counts = np.concatenate(([self.zero_count], counts))
        return reps, np.cumsum(counts)

    def _require_nonempty(self) -> None:
        if self.count == 0:
            raise ValueError("empty histogram")

    def quantiles(self, qs: Sequence[float]) -> list[float]:
        """Quantiles with numpy's default ("linear") definition, on representatives."""
        q = np.asarray(qs, dtype=np.float64).reshape(-1)
        if not np.all((q >= 0.0) & (q <= 1.0)):
            raise ValueError("quantile levels must be in [0, 1]")
        self._require_nonempty()
        reps, cum = self._ranked()
        n = int(cum[-1])
        h = (n - 1) * q
        lo = np.floor(h)
        frac = h - lo
        lo_rank = lo.astype(np.int64)
        hi_rank = np.minimum(lo_rank + 1, n - 1)
        # Order statistic i (0-based) lives in the first bucket whose cumulative count exceeds i.
        v_lo = reps[np.searchsorted(cum, lo_rank, side="right")]
        v_hi = reps[np.searchsorted(cum, hi_rank, side="right")]
        return (v_lo + frac * (v_hi - v_lo)).tolist()

    def quantile(self, q: float) -> float:
        return self.quantiles([q])[0]

    def min(self) -> float:
        self._require_nonempty()
        return 0.0 if self.zero_count else float(_representatives(self.keys[:1])[0])

    def max(self) -> float:
        self._require_nonempty()
        return float(_representatives(self.keys[-1:])[0]) if self.keys.size else 0.0

    def mean(self) -> float:
        self._require_nonempty()
        return float(np.dot(self.counts, _representatives(self.keys))) / self.count

    # -- serialization ----------------------------------------------------

    def to_bytes(self) -> bytes:
        """``PGH``, version byte, then zlib of LEB128 varints:
        zero_count, n, zigzag(first key), n - 1 key deltas, n counts."""
        head = np.array([self.zero_count, self.keys.size], dtype=np.uint64)
        body = [head]
        if self.keys.size:
            k0 = self.keys[:1]
            body.append(((k0 << 1) ^ (k0 >> 63)).view(np.uint64))
            body.append(np.diff(self.keys).astype(np.uint64))
            body.append(self.counts.astype(np.uint64))
        payload = _encode_varints(np.concatenate(body))
        return _MAGIC + bytes([_FORMAT_VERSION]) + zlib.compress(payload)

    @classmethod
    def from_bytes(cls, blob: bytes) -> LatencyHistogram:
        blob = bytes(blob)
        if blob[:3] != _MAGIC:
            raise SampleDecodeError("not a perfgate latency histogram (bad magic)")
        if len(blob) < 4 or blob[3] != _FORMAT_VERSION:
            version = blob[3] if len(blob) > 3 else "missing"
            raise SampleDecodeError(f"unsupported latency histogram format version: {version}")
        inflater = zlib.decompressobj()
        try:
            payload = inflater.decompress(blob[4:], _MAX_PAYLOAD)
        except zlib.error as exc:
            raise SampleDecodeError(f"corrupt latency histogram: {exc}") from None
        if not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
            raise SampleDecodeError("truncated or oversized latency histogram")
        values = _decode_varints(payload)
        if values.size < 2 or values.size != 2 + 2 * int(values[1]):
            raise SampleDecodeError("latency histogram payload has the wrong length")
        n = int(values[1])
        if n == 0:
            keys = np.empty(0, np.int64)
        else:
            z = values[2:3]
            deltas = values[3 : n + 2]
            if np.any(deltas >= _KEY_LIMIT):
                raise SampleDecodeError("latency histogram bucket keys out of range")
            k0 = ((z >> np.uint64(1)) ^ (np.uint64(0) - (z & np.uint64(1)))).view(np.int64)
            keys = np.concatenate((k0, k0[0] + np.cumsum(deltas.astype(np.int64))))
        counts = values[n + 2 :]
        if values[0] >= 2**63 or np.any(counts >= 2**63):
            raise SampleDecodeError("latency histogram count out of range")
        try:
            return cls(keys, counts.astype(np.int64), int(values[0]))
        except ValueError as exc:
            raise SampleDecodeError(f"invalid latency histogram: {exc}") from None

    # -- dunder -----------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencyHistogram):
            return NotImplemented
        return (
            self.zero_count == other.zero_count
            and np.array_equal(self.keys, other.keys)
            and np.array_equal(self.counts, other.counts)
        )

    # Compared by value over NumPy arrays, which are not hashable: unhashable, as a dataclass with eq would be.
    # The ignore: typeshed declares object.__hash__ a method, so mypy refuses None for it.
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"LatencyHistogram(count={self.count}, buckets={self.keys.size}, "
            f"zero_count={self.zero_count})"
        )


def _encode_varints(values: np.ndarray) -> bytes:
    """Unsigned LEB128, vectorised: one row of 7-bit groups per value."""
    groups = (values[:, None] >> _VARINT_SHIFTS) & np.uint64(0x7F)
    nonzero = groups != 0
    # Number of bytes = index of the highest non-zero group + 1 (at least 1).
    width = np.where(nonzero.any(axis=1), groups.shape[1] - np.argmax(nonzero[:, ::-1], axis=1), 1)
    column = np.arange(groups.shape[1])
    continuation = np.where(column < (width - 1)[:, None], 0x80, 0)
    encoded = groups.astype(np.uint8) | continuation.astype(np.uint8)
    return encoded[column < width[:, None]].tobytes()


def _decode_varints(data: bytes) -> np.ndarray:
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size == 0:
        return np.empty(0, np.uint64)
    if raw[-1] & 0x80:
        raise SampleDecodeError("latency histogram payload ends inside a varint")
    ends = np.flatnonzero(raw < 0x80)
    starts = np.concatenate(([0], ends[:-1] + 1))
    widths = ends - starts + 1
    # A 10th byte may only carry the single remaining bit of a 64-bit value.
    if widths.max() > 10 or np.any(raw[ends[widths == 10]] > 1):
        raise SampleDecodeError("latency histogram varint overflows 64 bits")
    position = np.arange(raw.size) - np.repeat(starts, widths)
    parts = (raw & 0x7F).astype(np.uint64) << (7 * position).astype(np.uint64)
    return np.bitwise_or.reduceat(parts, starts)


@dataclass(frozen=True)
class MannWhitneyResult:
    """Two-sided Mann-Whitney U test of ``b`` against ``a``.

    ``u`` is the U statistic of ``b``: the number of pairs (x from a, y from b)
    with y > x, plus half the number of tied pairs (same bucket).  It equals
    ``scipy.stats.mannwhitneyu(b, a).statistic`` on the bucket representatives.
    """

    u: float
    p_value: float
    prob_superiority: float  # P(b > a) + 0.5 P(b == a) = u / (n_a * n_b)
    n_a: int
    n_b: int


def mann_whitney_u(a: LatencyHistogram, b: LatencyHistogram) -> MannWhitneyResult:
    """Normal approximation with tie and continuity correction, from bucket counts."""
    n_a, n_b = a.count, b.count
    if n_a == 0 or n_b == 0:
        raise ValueError("Mann-Whitney U needs at least one value on each side")
    keys = np.union1d(a.keys, b.keys)
    # Slot 0 is the zero bucket, which sorts below every positive bucket.
    count_a = np.zeros(keys.size + 1, np.float64)
    count_b = np.zeros(keys.size + 1, np.float64)
    count_a[0], count_b[0] = a.zero_count, b.zero_count
    count_a[1 + np.searchsorted(keys, a.keys)] = a.counts
    count_b[1 + np.searchsorted(keys, b.keys)] = b.counts
    tied = count_a + count_b
    # A bucket holding ranks c-t+1 .. c gets their average, c - (t-1)/2.
    average_rank = np.cumsum(tied) - (tied - 1.0) / 2.0
    u = float(np.dot(count_b, average_rank)) - n_b * (n_b + 1) / 2
    n = n_a + n_b
    tie_term = float(np.sum(tied**3 - tied))
    variance = n_a * n_b / 12 * ((n + 1) - tie_term / (n * (n - 1)))
    if np.count_nonzero(tied) <= 1 or variance <= 0:
        p_value = 1.0
    else:
        z = (max(u, n_a * n_b - u) - n_a * n_b / 2 - 0.5) / math.sqrt(variance)
        # Two-sided normal tail, 2 * P(Z > z); erfc keeps precision far into the tail.
        p_value = min(1.0, math.erfc(z / math.sqrt(2.0)))
    return MannWhitneyResult(u, p_value, u / (n_a * n_b), n_a, n_b)

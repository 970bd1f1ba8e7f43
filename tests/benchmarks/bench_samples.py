"""Benchmark LatencyHistogram on 10^6 latencies per endpoint.

Run with ``uv run python tests/benchmarks/bench_samples.py``.  Prints figures
(median of several repetitions) next to the targets; it never fails.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from perfgate.samples import RELATIVE_ACCURACY, LatencyHistogram

N_SAMPLES = 1_000_000
REPETITIONS = 5
QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)
TARGET_CODEC_S = 0.2
TARGET_BLOB_KB = 64.0


def lognormal_20ms(rng: np.random.Generator) -> np.ndarray:
    return rng.lognormal(np.log(20.0), 0.5, N_SAMPLES)


def lognormal_5ms_tail(rng: np.random.Generator) -> np.ndarray:
    x = rng.lognormal(np.log(5.0), 1.0, N_SAMPLES)
    return np.where(rng.random(N_SAMPLES) < 0.01, 10.0 * x, x)


def uniform_1_500ms(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(1.0, 500.0, N_SAMPLES)


DISTRIBUTIONS: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "lognormal med 20 ms, s=0.5": lognormal_20ms,
    "lognormal med 5 ms, s=1.0 + 1% x10": lognormal_5ms_tail,
    "uniform 1-500 ms": uniform_1_500ms,
}


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def measure(values: np.ndarray) -> dict[str, float]:
    build, encode, decode = [], [], []
    hist = blob = None
    for _ in range(REPETITIONS):
        t, hist = timed(lambda: LatencyHistogram.from_values(values))
        build.append(t)
        t, blob = timed(hist.to_bytes)
        encode.append(t)
        t, _ = timed(lambda blob=blob: LatencyHistogram.from_bytes(blob))
        decode.append(t)
    exact = np.quantile(values, QUANTILES)
    error = np.max(np.abs(np.asarray(hist.quantiles(QUANTILES)) / exact - 1.0))
    return {
        "build_ms": 1e3 * statistics.median(build),
        "encode_ms": 1e3 * statistics.median(encode),
        "decode_ms": 1e3 * statistics.median(decode),
        "blob_kb": len(blob) / 1024,
        "buckets": float(hist.keys.size),
        "max_err_pct": 100.0 * error,
    }


def main() -> int:
    rng = np.random.default_rng(20240601)
    print(
        f"LatencyHistogram, {N_SAMPLES:,} samples per endpoint, "
        f"median of {REPETITIONS} runs, quantiles {QUANTILES}"
    )
    print(
        f"targets: encode+decode <= {TARGET_CODEC_S:.1f} s, blob <= {TARGET_BLOB_KB:.0f} KB, "
        f"quantile error <= {100 * RELATIVE_ACCURACY:.1f} %"
    )
    print()
    header = (
        f"{'distribution':<36}{'build ms':>10}{'encode ms':>11}{'decode ms':>11}"
        f"{'blob KB':>9}{'buckets':>9}{'max err %':>11}  targets"
    )
    print(header)
    print("-" * len(header))
    for name, generate in DISTRIBUTIONS.items():
        row = measure(generate(rng))
        ok = (
            (row["encode_ms"] + row["decode_ms"]) / 1e3 <= TARGET_CODEC_S
            and row["blob_kb"] <= TARGET_BLOB_KB
            and row["max_err_pct"] <= 100 * RELATIVE_ACCURACY
        )
        print(
            f"{name:<36}{row['build_ms']:>10.1f}{row['encode_ms']:>11.2f}{row['decode_ms']:>11.2f}"
            f"{row['blob_kb']:>9.2f}{row['buckets']:>9.0f}{row['max_err_pct']:>11.4f}  "
            f"{'met' if ok else 'MISSED'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The service's own metrics: its Prometheus or OpenMetrics endpoint scraped once a second during a run.

The text is parsed with the Prometheus client library's own parser (never by hand), and only the series asked
for are kept: by default the process collector's resident memory, CPU seconds and open file descriptors, plus
any series the user names (a counter such as ``app_db_queries_total``). Everything from the endpoint is outside
input: the answer is read up to a size, the series kept are bounded in number and length, non-finite values
are skipped, and a scrape that fails is counted, never fatal to the run.
"""

from __future__ import annotations

import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable

from prometheus_client.parser import text_string_to_metric_families

from perfgate.records import MAX_METRIC_SAMPLES, MAX_METRIC_SERIES, MetricSeries, ServiceMetrics

DEFAULT_SERIES = ("process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds")
"""What the Prometheus client libraries' process collectors expose, in every language they exist for."""
SCRAPE_INTERVAL_S = 1.0
SCRAPE_TIMEOUT_S = 2.0
MAX_BODY_BYTES = 4 * 2**20
"""A metrics page larger than this is not read past it (and is a failed scrape)."""


def parse_series(text: str, wanted: set[str]) -> dict[tuple[str, tuple[tuple[str, str], ...]], tuple[str, float]]:
    """The wanted samples of one scrape: ``(name, sorted labels) → (kind, value)``; ``ValueError`` when the parser
    refuses the text."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name not in wanted or not math.isfinite(sample.value):
                continue
            labels = tuple(sorted((str(k)[:200], str(v)[:200]) for k, v in sample.labels.items()))[:20]
            found[(sample.name, labels)] = (str(family.type)[:20], float(sample.value))
    return found


class MetricsScraper(threading.Thread):
    """Scrapes ``url`` every second until :meth:`finish`, keeping the series named in ``series``."""

    def __init__(self, url: str, series: Iterable[str] = ()) -> None:
        super().__init__(name="perfgate-metrics-scraper", daemon=True)
        self.url = url
        self.wanted = {*DEFAULT_SERIES, *series}
        self._stop_event = threading.Event()
        self._start = time.monotonic()
        self._series: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[str, list[tuple[float, float]]]] = {}
        self._dropped: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        self.scrapes = 0
        self.failed = 0
        self.last_error: str | None = None

    def _fetch(self) -> str:
        request = urllib.request.Request(self.url, headers={"Accept": "text/plain;version=0.0.4"})
        with urllib.request.urlopen(request, timeout=SCRAPE_TIMEOUT_S) as response:
            body = response.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            raise ValueError(f"the page is larger than {MAX_BODY_BYTES // 2**20} MB")
        return body.decode("utf-8", errors="replace")

    def scrape(self) -> None:
        """One scrape, its samples added to the series (a failure counted, with its reason)."""
        self.scrapes += 1
        at = round(time.monotonic() - self._start, 3)
        try:
            found = parse_series(self._fetch(), self.wanted)
        except urllib.error.HTTPError as exc:
            self._failed(f"HTTP {exc.code}")
            return
        except (urllib.error.URLError, OSError) as exc:
            self._failed(str(getattr(exc, "reason", exc)) or type(exc).__name__)
            return
        except (ValueError, TypeError, IndexError) as exc:  # what the parser raises on text it refuses
            self._failed(f"not Prometheus text ({exc})")
            return
        for key, (kind, value) in found.items():
            if key not in self._series and len(self._series) >= MAX_METRIC_SERIES:
                self._dropped.add(key)
                continue
            _, samples = self._series.setdefault(key, (kind, []))
            if len(samples) < MAX_METRIC_SAMPLES:
                samples.append((at, value))

    def _failed(self, reason: str) -> None:
        self.failed += 1
        self.last_error = reason[:500]

    def run(self) -> None:
        self.scrape()
        while not self._stop_event.wait(SCRAPE_INTERVAL_S):
            self.scrape()

    def finish(self) -> ServiceMetrics:
        """Stop, scrape a last time (the state the run left), and return what was kept."""
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=SCRAPE_TIMEOUT_S + 5)
        self.scrape()
        seen = {name for name, _ in self._series} | {name for name, _ in self._dropped}
        series = [MetricSeries(name=name, labels=dict(labels), kind=kind, samples=samples)
                  for (name, labels), (kind, samples) in sorted(self._series.items())]
        return ServiceMetrics(url=self.url[:2000], scrapes=self.scrapes, failed=self.failed,
                              last_error=self.last_error, missing=sorted(self.wanted - seen)[:MAX_METRIC_SERIES],
                              dropped=len(self._dropped), series=series)

"""Scraping a service's metrics endpoint: a real HTTP server on 127.0.0.1 whose page changes with each scrape."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from perfgate.config import MetricsConfig
from perfgate.measure.metrics import MAX_BODY_BYTES, MetricsScraper
from perfgate.records import MAX_METRIC_SERIES


@contextmanager
def metrics_page(page) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Serves ``page(n)`` (the n-th scrape, from 1) at /metrics; a ``(status, text)`` tuple sets the status."""
    scrapes = [0]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_GET(self) -> None:
            scrapes[0] += 1
            answer = page(scrapes[0])
            status, text = answer if isinstance(answer, tuple) else (200, answer)
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def _page(n: int) -> str:
    return (f"# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {50e6 + n * 1e6}\n"
            "# TYPE app_db_queries_total counter\n"
            f'app_db_queries_total{{table="orders"}} {10 * n}\napp_db_queries_total{{table="users"}} {n}\n'
            "# TYPE other_gauge gauge\nother_gauge 7\n"
            "# TYPE weird gauge\nprocess_open_fds NaN\n")


def test_the_series_asked_for_are_kept_per_label_set_and_the_rest_left_out() -> None:
    with metrics_page(_page) as url:
        scraper = MetricsScraper(url, ["app_db_queries_total", "never_there_total"])
        for _ in range(3):
            scraper.scrape()
        kept = scraper.finish()  # a last scrape: the state the run left
    assert kept.scrapes == 4 and kept.failed == 0
    by_key = {s.key: s for s in kept.series}
    assert set(by_key) == {'app_db_queries_total{table="orders"}', 'app_db_queries_total{table="users"}',
                           "process_resident_memory_bytes"}
    assert [v for _, v in by_key['app_db_queries_total{table="orders"}'].samples] == [10, 20, 30, 40]
    assert by_key['app_db_queries_total{table="orders"}'].kind == "counter"
    assert by_key["process_resident_memory_bytes"].growth == pytest.approx(3e6)
    # NaN is no value; names asked for (and the defaults) that never came are said so.
    assert kept.missing == ["never_there_total", "process_cpu_seconds_total", "process_open_fds"]


def test_failed_scrapes_are_counted_with_their_reason_and_the_answer_is_bounded() -> None:
    def page(n: int):  # type: ignore[no-untyped-def]
        if n == 1:
            return 503, "down"
        if n == 2:
            return "this is { not prometheus text\n"
        if n == 3:
            return "process_open_fds 3\n" + "# " + "x" * (MAX_BODY_BYTES + 10) + "\n"
        return "process_open_fds 4\n"

    with metrics_page(page) as url:
        scraper = MetricsScraper(url)
        for _ in range(3):
            scraper.scrape()
        kept = scraper.finish()
    assert kept.scrapes == 4 and kept.failed == 3 and "larger than 4 MB" in (kept.last_error or "")
    assert [s.samples[-1][1] for s in kept.series] == [4.0]

    nothing = MetricsScraper("http://127.0.0.1:9/metrics")
    result = nothing.finish()
    assert result.scrapes == result.failed == 1 and result.series == [] and result.last_error


def test_hostile_pages_cannot_grow_the_run_without_bound() -> None:
    many = "".join(f'process_open_fds{{id="{i}",evil="{"<b>" * 100}"}} {i}\n' for i in range(200))
    with metrics_page(lambda n: many) as url:
        kept = MetricsScraper(url).finish()
    assert len(kept.series) == MAX_METRIC_SERIES and kept.dropped == 200 - MAX_METRIC_SERIES
    assert all(len(v) <= 200 for s in kept.series for v in s.labels.values())


def test_the_config_takes_an_http_url_and_prometheus_names_only() -> None:
    assert MetricsConfig(url="http://127.0.0.1:{port}/metrics", series=["app:x_total"]).series == ["app:x_total"]
    for bad in ({"url": "file:///etc/passwd"}, {"url": "http://x/m", "series": ["1bad"]},
                {"url": "http://x/m", "series": ["a b"]}):
        with pytest.raises(ValueError):
            MetricsConfig.model_validate(bad)

"""Small SVG charts for the HTML report, drawn here so that the report needs no script and no network.

Every data point is an element (a ``circle`` with a ``<title>`` for its value), so the
charts can be read by people hovering, and checked by tests counting points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

BASE_COLOR = "#3b6fb6"
HEAD_COLOR = "#e0771b"
WIDTH, HEIGHT = 640, 230
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 58, 14, 26, 40


@dataclass
class Series:
    name: str
    color: str
    points: list[tuple[float, float]]
    dashed: bool = False
    dots: bool = True
    width: float = 1.6


@dataclass
class Chart:
    title: str
    x_label: str
    y_label: str
    series: list[Series] = field(default_factory=list)
    log_x: bool = False
    x_markers: list[tuple[float, str]] = field(default_factory=list)
    """Vertical lines (x, label), e.g. change points."""
    x_ticks: list[tuple[float, str]] | None = None
    """Fixed ticks with labels (commits); default: numeric ticks."""
    y_from_zero: bool = True

    @property
    def empty(self) -> bool:
        return not any(s.points for s in self.series)


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks: list[float] = []
    value = start
    while not ticks or ticks[-1] < high - step * 1e-9:  # the last tick is at or above ``high``
        if value >= low - step * 1e-9:
            ticks.append(round(value, 10))
        value += step
    return ticks


def _format(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.2f}".rstrip("0").rstrip(".")


def render(chart: Chart) -> Markup:
    """The chart as inline SVG (or a note when there is nothing to draw)."""
    if chart.empty:
        return Markup('<p class="nodata">{}: no data</p>').format(chart.title)
    xs = [x for s in chart.series for x, _ in s.points]
    ys = [y for s in chart.series for _, y in s.points]
    transform = (lambda v: math.log10(max(v, 1e-9))) if chart.log_x else (lambda v: v)
    x_low, x_high = transform(min(xs)), transform(max(xs))
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1
    y_low = 0.0 if chart.y_from_zero and min(ys) >= 0 else min(ys)
    y_ticks = _nice_ticks(y_low, max(ys) if max(ys) > y_low else y_low + 1)
    y_low, y_high = min(y_ticks[0], y_low), max(y_ticks[-1], max(ys))
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def px(x: float) -> float:
        return MARGIN_LEFT + (transform(x) - x_low) / (x_high - x_low) * plot_w

    def py(y: float) -> float:
        return MARGIN_TOP + plot_h - (y - y_low) / ((y_high - y_low) or 1) * plot_h

    out = [Markup('<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{t}">'
                  '<text class="title" x="{l}" y="16">{t}</text>').format(w=WIDTH, h=HEIGHT, t=chart.title,
                                                                          l=MARGIN_LEFT)]
    for tick in y_ticks:
        y = py(tick)
        out.append(Markup('<line class="grid" x1="{a}" x2="{b}" y1="{y:.1f}" y2="{y:.1f}"/>'
                          '<text class="tick" x="{t}" y="{ty:.1f}" text-anchor="end">{v}</text>').format(
            a=MARGIN_LEFT, b=WIDTH - MARGIN_RIGHT, y=y, t=MARGIN_LEFT - 6, ty=y + 4, v=_format(tick)))
    if chart.x_ticks is not None:
        x_ticks = chart.x_ticks
    elif chart.log_x:
        x_ticks = [(m * 10 ** e, _format(m * 10 ** e)) for e in range(math.floor(x_low), math.ceil(x_high) + 1)
                   for m in (1, 2, 5) if x_low - 1e-9 <= math.log10(m * 10 ** e) <= x_high + 1e-9]
    else:
        x_ticks = [(t, _format(t)) for t in _nice_ticks(x_low, x_high)]
    for value, label in x_ticks:
        x = px(value)
        out.append(Markup('<text class="tick" x="{x:.1f}" y="{y}" text-anchor="middle">{v}</text>').format(
            x=x, y=HEIGHT - MARGIN_BOTTOM + 16, v=label))
    for value, label in chart.x_markers:
        x = px(value)
        out.append(Markup('<line class="marker" x1="{x:.1f}" x2="{x:.1f}" y1="{a}" y2="{b}"><title>{t}</title>'
                          '</line>').format(x=x, a=MARGIN_TOP, b=HEIGHT - MARGIN_BOTTOM, t=label))
    out.append(Markup('<text class="axis" x="{x}" y="{y}" text-anchor="middle">{t}</text>'
                      '<text class="axis" transform="translate(14 {m}) rotate(-90)" text-anchor="middle">{u}</text>')
               .format(x=MARGIN_LEFT + plot_w / 2, y=HEIGHT - 6, t=chart.x_label, m=MARGIN_TOP + plot_h / 2,
                       u=chart.y_label))
    for series in chart.series:
        if not series.points:
            continue
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in series.points)
        dash = ' stroke-dasharray="5 3"' if series.dashed else ""
        out.append(Markup('<polyline class="line" points="{p}" stroke="{c}" stroke-width="{w}"{d}>'
                          '<title>{n}</title></polyline>').format(p=path, c=series.color, w=series.width,
                                                                  d=Markup(dash), n=series.name))
        if series.dots:
            for x, y in series.points:
                out.append(Markup('<circle class="pt" cx="{x:.1f}" cy="{y:.1f}" r="2.2" fill="{c}">'
                                  '<title>{n}: {xv}, {yv}</title></circle>').format(
                    x=px(x), y=py(y), c=series.color, n=series.name, xv=_format(x), yv=_format(y)))
    legend_x = MARGIN_LEFT + 8
    names: list[tuple[str, str]] = []
    for series in chart.series:
        label = series.name.split(" · ")[0]
        if (label, series.color) not in names:
            names.append((label, series.color))
    for i, (name, color) in enumerate(names[:4]):
        x = legend_x + i * 150
        out.append(Markup('<rect x="{x}" y="{y}" width="10" height="10" fill="{c}"/>'
                          '<text class="legend" x="{tx}" y="{ty}">{n}</text>').format(
            x=x, y=MARGIN_TOP + 2, c=color, tx=x + 14, ty=MARGIN_TOP + 11, n=name))
    out.append(Markup("</svg>"))
    return Markup("").join(out)


def downsample(points: Sequence[tuple[float, float]], limit: int = 120) -> list[tuple[float, float]]:
    """At most ``limit`` points, evenly spread, first and last kept."""
    if len(points) <= limit:
        return list(points)
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


__all__ = ["BASE_COLOR", "HEAD_COLOR", "Chart", "Series", "downsample", "escape", "render"]

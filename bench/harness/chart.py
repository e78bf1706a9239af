"""An SVG chart of the ratios, written by hand (no plotting library in the bench venv).

Grouped bars: one group per scenario, one bar per target, height = the median
per-round ratio against that scenario's baseline. The scale is logarithmic so
that 0.2x and 5x are the same distance from the line at 1.0 (the baseline), and
a 30x HTTP/2 bar does not flatten the rest. Bars grow up from 1.0 when faster,
down when slower; each carries its value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

# Distinguishable colours (Tableau 20 order, darker first); Levante's targets come first.
PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
    "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d",
]  # fmt: skip
TICKS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500]


@dataclass(frozen=True)
class Layout:
    bar: int = 16  # bar width
    gap: int = 3  # between bars of a group
    group_gap: int = 36  # between groups
    left: int = 64
    right: int = 24
    top: int = 56
    plot: int = 380  # plot height
    label_band: int = 64  # scenario names under the plot
    legend_row: int = 20
    legend_col: int = 190


def chart_data(
    summary: dict[str, Any],
) -> tuple[list[str], list[tuple[str, str, dict[str, float]]]]:
    """(targets in order, [(scenario, baseline, {target: ratio})]) for scenarios with ratios."""
    targets: list[str] = []
    groups = []
    for name, s in summary.items():
        ratios = {
            t: float(r["ratio_median"])
            for t, r in s["targets"].items()
            if r.get("ok") and r.get("ratio_median")
        }
        if not ratios:
            continue
        groups.append((name, s.get("baseline") or "?", ratios))
        targets += [t for t in ratios if t not in targets]
    return targets, groups


class _Scale:
    def __init__(self, values: list[float], top: int, height: int) -> None:
        lo = min([*values, 0.5]) / 1.6  # room for the labels under bars below 1.0
        hi = max([*values, 2.0]) * 1.35  # head-room for the value labels
        self.lo, self.hi = math.log10(lo), math.log10(hi)
        self.top, self.height = top, height
        self.ticks = [t for t in TICKS if lo <= t <= hi]

    def y(self, ratio: float) -> float:
        frac = (math.log10(ratio) - self.lo) / (self.hi - self.lo)
        return self.top + self.height * (1 - frac)


def _text(x: float, y: float, s: str, size: int = 11, anchor: str = "middle", **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>'
        f"{escape(s)}</text>"
    )


def _axis(scale: _Scale, x0: float, x1: float) -> list[str]:
    out = []
    for t in scale.ticks:
        y = scale.y(t)
        stroke = (
            'stroke="#333" stroke-width="1.5" stroke-dasharray="6 3"'
            if t == 1
            else ('stroke="#e3e3e3" stroke-width="1"')
        )
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" {stroke}/>')
        out.append(_text(x0 - 6, y + 4, f"{t:g}x", 11, "end"))
    return out


def _bar(x: float, scale: _Scale, ratio: float, *, colour: str, tip: str, width: int) -> list[str]:
    y1, yr = scale.y(1.0), scale.y(ratio)
    top, height = min(y1, yr), max(abs(y1 - yr), 1.0)
    label_y = top - 4 if ratio >= 1 else top + height + 4
    anchor = "start" if ratio >= 1 else "end"
    cx = x + width / 2 + 3
    return [
        f'<rect x="{x:.1f}" y="{top:.1f}" width="{width}" height="{height:.1f}" '
        f'fill="{colour}"><title>{escape(tip)}</title></rect>',
        _text(
            cx, label_y, f"{ratio:.2f}", 9, anchor, transform=f"rotate(-90 {cx:.1f} {label_y:.1f})"
        ),
    ]


def _legend(targets: list[str], colours: dict[str, str], lay: Layout, y0: float, width: int):
    per_row = max(1, (width - lay.left) // lay.legend_col)
    out = []
    for i, t in enumerate(targets):
        x = lay.left + (i % per_row) * lay.legend_col
        y = y0 + (i // per_row) * lay.legend_row
        out.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{colours[t]}"/>')
        out.append(_text(x + 18, y, t, 12, "start"))
    rows = (len(targets) + per_row - 1) // per_row
    return out, rows * lay.legend_row


def render_svg(summary: dict[str, Any], title: str = "Throughput ratio vs baseline") -> str:
    """The chart as an SVG document (a short placeholder when no scenario has ratios)."""
    lay = Layout()
    targets, groups = chart_data(summary)
    colours = {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(targets)}
    group_w = [len(r) * (lay.bar + lay.gap) - lay.gap for _, _, r in groups]
    width = max(640, lay.left + sum(group_w) + lay.group_gap * len(groups) + lay.right)
    scale = _Scale([v for _, _, r in groups for v in r.values()] or [1.0], lay.top, lay.plot)
    body = [_text(width / 2, 24, title, 16, font_weight="bold")]
    body.append(
        _text(width / 2, 42, "median of per-round ratios, log scale; above 1.0 = faster", 11)
    )
    body += _axis(scale, lay.left, width - lay.right)
    x = lay.left + lay.group_gap / 2
    for (name, baseline, ratios), gw in zip(groups, group_w, strict=True):
        for t in targets:
            if t in ratios:
                tip = f"{name}: {t} {ratios[t]:.3f}x {baseline}"
                body += _bar(x, scale, ratios[t], colour=colours[t], tip=tip, width=lay.bar)
                x += lay.bar + lay.gap
        mid = x - lay.gap - gw / 2
        base_y = lay.top + lay.plot
        body.append(_text(mid, base_y + 20, name, 12, font_weight="bold"))
        body.append(_text(mid, base_y + 36, f"vs {baseline}", 11, fill="#555"))
        x += lay.group_gap - lay.gap
    legend, legend_h = _legend(targets, colours, lay, lay.top + lay.plot + lay.label_band, width)
    body += legend
    if not groups:
        body.append(_text(width / 2, lay.top + lay.plot / 2, "no ratios measured", 14))
    height = lay.top + lay.plot + lay.label_band + legend_h + 12
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height}" '
            f'viewBox="0 0 {width:.0f} {height}" font-family="sans-serif">',
            f'<rect width="{width:.0f}" height="{height}" fill="white"/>',
            *body,
            "</svg>",
            "",
        ]
    )

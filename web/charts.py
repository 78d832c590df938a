"""Charts drawn on the server as inline SVG: no third-party script, nothing fetched from elsewhere.

    line_chart([Series("BC", [(label, value), …], "bc"), Series("AS", …, "as")], unit="kWh", marks=[3, 17])

Series share their x labels (e.g. JST minutes); a missing value (None) breaks the line. `marks` are x positions
to flag (mismatches), drawn as red ticks. Colours and line styles come from the stylesheet by class name.
"""

from dataclasses import dataclass
from decimal import Decimal

from markupsafe import Markup, escape

WIDTH, HEIGHT = 900, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 26, 40


@dataclass(frozen=True)
class Series:
    name: str
    points: list[tuple[str, float | None]]
    css_class: str


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^n at or above `value`: a readable top of the axis."""
    if value <= 0:
        return 1.0
    magnitude = Decimal(10) ** (Decimal(value).adjusted())
    for step in (1, 2, Decimal("2.5"), 5, 10):
        if magnitude * step >= Decimal(value):
            return float(magnitude * step)
    return float(magnitude * 10)


def _number(value: float) -> str:
    return f"{value:,.3f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"


def line_chart(
    series: list[Series],
    unit: str,
    marks: list[int] = (),
    title: str = "",
    x_format=lambda label: label,
    floor: float | None = 0.0,
) -> Markup:
    labels = [label for label, _ in series[0].points] if series else []
    values = [v for s in series for _, v in s.points if v is not None]
    if not labels or not values:
        return Markup('<p class="empty">Nothing to draw yet.</p>')
    top = _nice_ceiling(max(values))
    bottom = floor if floor is not None else min(0.0, min(values))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    count = len(labels)

    def x(i: int) -> float:
        return LEFT + (plot_w * i / (count - 1) if count > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - (v - bottom) / ((top - bottom) or 1))

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg">'
    ]
    if title:
        parts.append(f"<title>{escape(title)}</title>")
    for step in range(5):
        v = bottom + (top - bottom) * step / 4
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{_number(v)}</text>'
        )
    parts.append(f'<text class="unit" x="{LEFT - 6}" y="{TOP - 12}" text-anchor="end">{escape(unit)}</text>')
    ticks = sorted({round(i * (count - 1) / 5) for i in range(6)}) if count > 1 else [0]
    for i in ticks:
        parts.append(
            f'<text class="tick" x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">'
            f"{escape(x_format(labels[i]))}</text>"
        )
    for i in marks:
        parts.append(
            f'<line class="mark" x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}">'
            f"<title>mismatch at {escape(labels[i])}</title></line>"
        )
    for s in series:
        runs, run = [], []
        for i, (_, v) in enumerate(s.points):
            if v is None:
                if run:
                    runs.append(run)
                run = []
            else:
                run.append(f"{x(i):.1f},{y(v):.1f}")
        if run:
            runs.append(run)
        for points in runs:
            if len(points) == 1:
                cx, cy = points[0].split(",")
                parts.append(f'<circle class="line {s.css_class}" cx="{cx}" cy="{cy}" r="3"/>')
            else:
                parts.append(f'<polyline class="line {s.css_class}" points="{" ".join(points)}"/>')
    legend_x = LEFT
    for s in series:
        parts.append(
            f'<line class="line {s.css_class}" x1="{legend_x}" x2="{legend_x + 18}" y1="{HEIGHT - 8}" '
            f'y2="{HEIGHT - 8}"/><text class="legend" x="{legend_x + 22}" y="{HEIGHT - 4}">'
            f"{escape(s.name)}</text>"
        )
        legend_x += 40 + 8 * len(s.name)
    if marks:
        parts.append(
            f'<line class="mark" x1="{legend_x}" x2="{legend_x}" y1="{HEIGHT - 14}" y2="{HEIGHT - 2}"/>'
            f'<text class="legend" x="{legend_x + 6}" y="{HEIGHT - 4}">mismatch</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))

"""A small server-side SVG chart of a job's archive sizes and run durations (no script, no CDN)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

WIDTH, PANEL_HEIGHT, LEFT, RIGHT, TOP, GAP = 640, 110, 64, 8, 18, 34
MAX_BAR_WIDTH = 24
SIZE_COLOUR, DURATION_COLOUR, GRID_COLOUR, TEXT_COLOUR = "#2563eb", "#d97706", "#e5e7eb", "#4b5563"


@dataclass(frozen=True)
class Point:
    at: datetime
    size_bytes: int | None
    seconds: float | None
    label: str  # archive name, shown on hover


def _panel(
    points: Sequence[Point],
    values: Sequence[float],
    *,
    top: float,
    title: str,
    colour: str,
    fmt: Callable[[float], str],
    bars: bool,
) -> list[str]:
    inner = WIDTH - LEFT - RIGHT
    peak = max(values, default=0.0) or 1.0
    step = inner / max(len(values), 1)
    bottom = top + PANEL_HEIGHT
    parts = [
        f'<text x="{LEFT}" y="{top - 6}" font-size="12" fill="{TEXT_COLOUR}">{escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" stroke="{GRID_COLOUR}"/>',
        f'<line x1="{LEFT}" y1="{top}" x2="{WIDTH - RIGHT}" y2="{top}" stroke="{GRID_COLOUR}" stroke-dasharray="3 3"/>',
        f'<text x="{LEFT - 6}" y="{top + 4}" font-size="11" text-anchor="end" fill="{TEXT_COLOUR}">{escape(fmt(peak))}</text>',
        f'<text x="{LEFT - 6}" y="{bottom}" font-size="11" text-anchor="end" fill="{TEXT_COLOUR}">0</text>',
    ]
    line: list[str] = []
    for index, (point, value) in enumerate(zip(points, values, strict=True)):
        height = PANEL_HEIGHT * value / peak
        x = LEFT + index * step
        tip = escape(f"{point.label} · {fmt(value)}")
        if bars:
            width = min(max(step * 0.7, 1), MAX_BAR_WIDTH)
            parts.append(
                f'<rect x="{x + (step - width) / 2:.1f}" y="{bottom - height:.1f}" width="{width:.1f}" '
                f'height="{max(height, 0.5):.1f}" fill="{colour}"><title>{tip}</title></rect>'
            )
        else:
            cx, cy = x + step / 2, bottom - height
            line.append(f"{cx:.1f},{cy:.1f}")
            parts.append(
                f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{colour}"><title>{tip}</title></circle>'
            )
    if line:
        parts.insert(
            5,
            f'<polyline points="{" ".join(line)}" fill="none" stroke="{colour}" stroke-width="2"/>',
        )
    return parts


def render(
    points: Sequence[Point],
    *,
    size_title: str,
    duration_title: str,
    size_fmt: Callable[[float], str],
    duration_fmt: Callable[[float], str],
    date_fmt: Callable[[datetime], str],
    description: str,
) -> Markup:
    """Two panels sharing the time axis: sizes as bars, durations as a line."""
    height = TOP + 2 * PANEL_HEIGHT + GAP + 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'class="w-full h-auto max-w-3xl" role="img" aria-label="{escape(description)}">',
        f"<desc>{escape(description)}</desc>",
    ]
    parts += _panel(
        points,
        [float(point.size_bytes or 0) for point in points],
        top=TOP,
        title=size_title,
        colour=SIZE_COLOUR,
        fmt=size_fmt,
        bars=True,
    )
    parts += _panel(
        points,
        [float(point.seconds or 0) for point in points],
        top=TOP + PANEL_HEIGHT + GAP,
        title=duration_title,
        colour=DURATION_COLOUR,
        fmt=duration_fmt,
        bars=False,
    )
    if points:
        axis_y = height - 6
        parts.append(
            f'<text x="{LEFT}" y="{axis_y}" font-size="11" fill="{TEXT_COLOUR}">{escape(date_fmt(points[0].at))}</text>'
        )
        parts.append(
            f'<text x="{WIDTH - RIGHT}" y="{axis_y}" font-size="11" text-anchor="end" fill="{TEXT_COLOUR}">{escape(date_fmt(points[-1].at))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text and attribute above is escaped)

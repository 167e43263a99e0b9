"""Template filters: how numbers and times are shown to people."""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from markupsafe import Markup

from . import stats


def score(value: float | None) -> str:
    """2.0 -> "2", 1.6667 -> "1.67"."""
    if value is None:
        return "–"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text or "0"


def thousands(value: int) -> str:
    """12345 -> "12,345": ranks and totals on large boards."""
    return f"{value:,}"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}%"


def duration(ms: int | None) -> str:
    """Milliseconds as "1 h 2 min", "4 min 12 s" or "9 s"."""
    if ms is None:
        return "–"
    seconds = round(ms / 1000)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {seconds} s"
    return f"{seconds} s"


def when(value: datetime | None) -> str:
    return "–" if value is None else value.strftime("%d %b %Y, %H:%M UTC")


def histogram_svg(counts, title: str) -> Markup:
    """The score histogram as inline SVG (``stats.histogram_svg`` escapes the text)."""
    return Markup(stats.histogram_svg(counts, title=title))  # nosec B704


def init_app(app: Flask) -> None:
    app.add_template_filter(histogram_svg)
    app.add_template_filter(thousands)
    app.add_template_filter(score)
    app.add_template_filter(percent)
    app.add_template_filter(duration)
    app.add_template_filter(when)

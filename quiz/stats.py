"""Item analysis for quizzes, as pure functions on plain data.

For each question, over the finished attempts that answered it:

- **Facility index**: the mean of the item's fraction, ``points / max_points``, so 1.0
  means everyone earned full points and 0.0 that nobody earned any.
- **Discrimination**: the corrected item-rest correlation, i.e. the Pearson correlation
  between the item's fraction and the *rest score* of the same attempt (the attempt's
  score minus the points this item earned). Leaving the item out of the total stops it
  correlating with itself. For items scored 0 or 1 this is the point-biserial
  correlation. It is undefined (``None``) with fewer than two answers or when either
  variable does not vary. Pearson's r is ``sum(dx * dy) / sqrt(sum(dx²) * sum(dy²))``,
  where ``dx`` and ``dy`` are deviations from the means.

A question is flagged ``"too easy"`` when its facility is above ``TOO_EASY``,
``"too hard"`` when below ``TOO_HARD``, and ``"low discrimination"`` when its
discrimination is below ``LOW_DISCRIMINATION`` (negative values included: the stronger
players did worse on it). An undefined value raises no flag.

Score distributions are summarised by count, mean, median and sample standard
deviation (n - 1), and charted as a histogram of percentages in equal bands.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

TOO_EASY = 0.9
TOO_HARD = 0.2
LOW_DISCRIMINATION = 0.2


@dataclass(frozen=True)
class ItemResponse:
    """One answer in one finished attempt."""

    attempt_id: int
    question_id: int
    points: float
    max_points: float
    chosen: tuple[int, ...]
    seconds: float


@dataclass(frozen=True)
class AttemptScore:
    """The total of one finished attempt."""

    attempt_id: int
    score: float
    max_score: float


@dataclass(frozen=True)
class Summary:
    """Count, mean, median and sample standard deviation of some values."""

    count: int
    mean: float | None
    median: float | None
    stdev: float | None


@dataclass(frozen=True)
class ItemStats:
    """Item analysis of one question."""

    question_id: int
    answers: int
    facility: float | None
    discrimination: float | None
    choice_counts: dict[int, int]
    mean_seconds: float | None
    flags: tuple[str, ...]


def summarise(values: Sequence[float]) -> Summary:
    """Summarise values; a statistic is None when it is undefined for so few values."""
    values = [float(v) for v in values]
    if not values:
        return Summary(0, None, None, None)
    return Summary(
        count=len(values),
        mean=statistics.fmean(values),
        median=statistics.median(values),
        stdev=statistics.stdev(values) if len(values) >= 2 else None,
    )


def histogram(percentages: Sequence[float], bins: int = 10) -> list[int]:
    """Count percentages per equal band of 0..100; the last band includes 100."""
    if bins < 1:
        raise ValueError("bins must be at least 1")
    counts = [0] * bins
    for value in percentages:
        if math.isnan(value):
            raise ValueError("a percentage is NaN")
        clamped = min(max(value, 0.0), 100.0)
        # Multiply before dividing so that band edges such as 10 land exactly.
        counts[min(int(clamped * bins / 100), bins - 1)] += 1
    return counts


def histogram_svg(
    counts: Sequence[int], *, title: str, width: int = 480, height: int = 200
) -> str:
    """Render band counts (as from ``histogram``) as an accessible SVG bar chart.

    The chart has no style attribute or element, so it renders under a strict
    Content-Security-Policy; restyle it through the ``stats-*`` class names. Element
    ids derive from the title, so two charts on one page need different titles.
    """
    if not counts:
        raise ValueError("counts is empty")
    if any(count < 0 for count in counts):
        raise ValueError("counts must not be negative")
    top, bottom, side = 20, 24, 4
    plot_height = height - top - bottom
    if plot_height <= 0 or width <= 2 * side:
        raise ValueError("the chart is too small to draw")

    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "chart"
    title_id, desc_id = f"histogram-{slug}-title", f"histogram-{slug}-desc"
    bins = len(counts)
    labels = [_band_label(i, bins) for i in range(bins)]
    description = "; ".join(
        f"{label}: {count} attempt{'' if count == 1 else 's'}"
        for label, count in zip(labels, counts, strict=True)
    )
    band_width = (width - 2 * side) / bins
    baseline = top + plot_height
    # An all-zero chart keeps its axis and labels; max(..., 1) avoids dividing by 0.
    scale = plot_height / max(max(counts), 1)

    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="stats-histogram"'
            f' width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
            f' role="img" aria-labelledby="{title_id} {desc_id}">'
        ),
        f'<title id="{title_id}">{escape(title)}</title>',
        f'<desc id="{desc_id}">{escape(description)}</desc>',
    ]
    for i, (label, count) in enumerate(zip(labels, counts, strict=True)):
        x = side + i * band_width
        middle = _num(x + band_width / 2)
        if count:
            bar_height = count * scale
            y = baseline - bar_height
            parts.append(
                f'<rect class="stats-bar" x="{_num(x + 1)}" y="{_num(y)}"'
                f' width="{_num(max(band_width - 2, 1))}" height="{_num(bar_height)}"'
                f' fill="#3b6ea5"/>'
            )
            parts.append(
                f'<text class="stats-count" x="{middle}" y="{_num(y - 4)}"'
                f' font-size="11" text-anchor="middle" fill="#222">{count}</text>'
            )
        parts.append(
            f'<text class="stats-band" x="{middle}" y="{_num(baseline + 14)}"'
            f' font-size="10" text-anchor="middle" fill="#222">{escape(label)}</text>'
        )
    parts.append(
        f'<line class="stats-axis" x1="{side}" y1="{baseline}"'
        f' x2="{width - side}" y2="{baseline}" stroke="#222" stroke-width="1"/>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def item_analysis(
    responses: Iterable[ItemResponse], attempts: Mapping[int, AttemptScore]
) -> list[ItemStats]:
    """Analyse each question, in the order questions first appear in ``responses``.

    Responses whose attempt is not in ``attempts`` are ignored.
    """
    by_question: dict[int, list[ItemResponse]] = {}
    for response in responses:
        if response.attempt_id not in attempts:
            continue
        if response.max_points <= 0:
            raise ValueError(f"question {response.question_id} has max_points <= 0")
        by_question.setdefault(response.question_id, []).append(response)
    return [
        _item_stats(question_id, answers, attempts)
        for question_id, answers in by_question.items()
    ]


def _item_stats(
    question_id: int,
    answers: list[ItemResponse],
    attempts: Mapping[int, AttemptScore],
) -> ItemStats:
    fractions = [r.points / r.max_points for r in answers]
    rests = [attempts[r.attempt_id].score - r.points for r in answers]
    facility = statistics.fmean(fractions) if fractions else None
    discrimination = _pearson(fractions, rests)
    choice_counts: dict[int, int] = {}
    for response in answers:
        # A choice listed twice in one answer was still picked once.
        for choice_id in sorted(set(response.chosen)):
            choice_counts[choice_id] = choice_counts.get(choice_id, 0) + 1
    mean_seconds = statistics.fmean(r.seconds for r in answers) if answers else None

    flags = []
    if facility is not None and facility > TOO_EASY:
        flags.append("too easy")
    if facility is not None and facility < TOO_HARD:
        flags.append("too hard")
    if discrimination is not None and discrimination < LOW_DISCRIMINATION:
        flags.append("low discrimination")
    return ItemStats(
        question_id=question_id,
        answers=len(answers),
        facility=facility,
        discrimination=discrimination,
        choice_counts=dict(sorted(choice_counts.items())),
        mean_seconds=mean_seconds,
        flags=tuple(flags),
    )


def _pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's r, or None with fewer than 2 pairs or a variable that does not vary."""
    if len(xs) < 2 or _constant(xs) or _constant(ys):
        return None
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    dxs = [x - mean_x for x in xs]
    dys = [y - mean_y for y in ys]
    sxy = math.fsum(dx * dy for dx, dy in zip(dxs, dys, strict=True))
    sxx = math.fsum(dx * dx for dx in dxs)
    syy = math.fsum(dy * dy for dy in dys)
    # Rounding can push |r| a hair past 1.
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def _constant(values: Sequence[float]) -> bool:
    # Rest scores are differences of rounded floats (3.6667 - 0.6667), so values that
    # should be equal may differ in the last bits; that noise is not variance.
    spread = max(values) - min(values)
    return spread <= 1e-9 * max(1.0, max(abs(v) for v in values))


def _band_label(i: int, bins: int) -> str:
    return f"{_num(100 * i / bins, 1)}–{_num(100 * (i + 1) / bins, 1)}%"


def _num(value: float, places: int = 2) -> str:
    """Format a number briefly and deterministically: 12.50 -> "12.5", 3.0 -> "3"."""
    text = f"{value:.{places}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text

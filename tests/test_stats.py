import math
import xml.etree.ElementTree as ET

import pytest

from quiz.stats import (
    AttemptScore,
    ItemResponse,
    Summary,
    histogram,
    histogram_svg,
    item_analysis,
    summarise,
)

SVG = "{http://www.w3.org/2000/svg}"


def answer(attempt_id, question_id, points, max_points=1.0, chosen=(), seconds=10.0):
    return ItemResponse(attempt_id, question_id, points, max_points, chosen, seconds)


def scores(responses):
    """Attempt totals that agree with the responses."""
    totals, maxima = {}, {}
    for r in responses:
        totals[r.attempt_id] = totals.get(r.attempt_id, 0.0) + r.points
        maxima[r.attempt_id] = maxima.get(r.attempt_id, 0.0) + r.max_points
    return {a: AttemptScore(a, totals[a], maxima[a]) for a in totals}


# --- The worked example ------------------------------------------------------------
#
# 4 attempts x 3 questions; Q1 and Q3 are worth 1 point, Q2 is worth 2.
#
#   attempt   Q1  Q2  Q3   score
#   1          1   2   1     4
#   2          1   1   0     2
#   3          0   2   0     2
#   4          0   0   1     1
#
# Facility (mean of points / max_points):
#   Q1: (1 + 1 + 0 + 0) / 4             = 0.5
#   Q2: (2/2 + 1/2 + 2/2 + 0/2) / 4     = (1 + 0.5 + 1 + 0) / 4 = 2.5 / 4 = 0.625
#   Q3: (1 + 0 + 0 + 1) / 4             = 0.5
#
# Discrimination of Q1: x = item fraction, y = rest score (score minus Q1's points).
#   x = 1, 1, 0, 0                     mean x = 2 / 4 = 0.5
#   y = 4-1, 2-1, 2-0, 1-0 = 3, 1, 2, 1  mean y = 7 / 4 = 1.75
#   dx = 0.5, 0.5, -0.5, -0.5
#   dy = 1.25, -0.75, 0.25, -0.75
#   sum dx*dy = 0.625 - 0.375 - 0.125 + 0.375 = 0.5
#   sum dx^2  = 4 * 0.25 = 1
#   sum dy^2  = 1.5625 + 0.5625 + 0.0625 + 0.5625 = 2.75
#   r = 0.5 / sqrt(1 * 2.75) = 0.5 / (sqrt(11) / 2) = 1 / sqrt(11) ≈ 0.3015
#
# Discrimination of Q3:
#   x = 1, 0, 0, 1                     mean x = 0.5
#   y = 4-1, 2-0, 2-0, 1-1 = 3, 2, 2, 0  mean y = 7 / 4 = 1.75
#   dx = 0.5, -0.5, -0.5, 0.5
#   dy = 1.25, 0.25, 0.25, -1.75
#   sum dx*dy = 0.625 - 0.125 - 0.125 - 0.875 = -0.5
#   sum dx^2  = 1
#   sum dy^2  = 1.5625 + 0.0625 + 0.0625 + 3.0625 = 4.75
#   r = -0.5 / sqrt(4.75) = -0.5 / (sqrt(19) / 2) = -1 / sqrt(19) ≈ -0.2294
#
# Discrimination of Q2:
#   x = 1, 0.5, 1, 0 (mean 0.625); y = 2, 1, 0, 1 (mean 1)
#   dy = 1, 0, -1, 0, so sum dx*dy = 0.375 * 1 + 0.375 * -1 = 0 and r = 0.
#
# Q1 raises no flag; Q2 (r = 0) and Q3 (r < 0) are below 0.2: "low discrimination".
WORKED = [
    answer(1, 1, 1),
    answer(1, 2, 2, max_points=2),
    answer(1, 3, 1),
    answer(2, 1, 1),
    answer(2, 2, 1, max_points=2),
    answer(2, 3, 0),
    answer(3, 1, 0),
    answer(3, 2, 2, max_points=2),
    answer(3, 3, 0),
    answer(4, 1, 0),
    answer(4, 2, 0, max_points=2),
    answer(4, 3, 1),
]


def test_item_analysis_matches_the_worked_example():
    attempts = scores(WORKED)
    assert [a.score for a in attempts.values()] == [4, 2, 2, 1]

    q1, q2, q3 = item_analysis(WORKED, attempts)

    assert [q.question_id for q in (q1, q2, q3)] == [1, 2, 3]
    assert [q.answers for q in (q1, q2, q3)] == [4, 4, 4]
    assert q1.facility == pytest.approx(0.5, abs=1e-9)
    assert q2.facility == pytest.approx(0.625, abs=1e-9)
    assert q3.facility == pytest.approx(0.5, abs=1e-9)
    assert q1.discrimination == pytest.approx(1 / math.sqrt(11), abs=1e-9)
    assert q2.discrimination == pytest.approx(0.0, abs=1e-9)
    assert q3.discrimination == pytest.approx(-1 / math.sqrt(19), abs=1e-9)
    assert q1.flags == ()
    assert q2.flags == ("low discrimination",)
    assert q3.flags == ("low discrimination",)


def test_questions_keep_the_order_they_first_appear_in():
    responses = [answer(1, 30, 1), answer(1, 10, 0), answer(2, 20, 1), answer(2, 10, 1)]

    stats = item_analysis(responses, scores(responses))

    assert [s.question_id for s in stats] == [30, 10, 20]


# --- summarise ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], Summary(0, None, None, None)),
        ([7], Summary(1, 7.0, 7.0, None)),
        # mean 5; deviations -3, -1, 1, 3; sum of squares 20; 20 / (4 - 1)
        ([2, 4, 6, 8], Summary(4, 5.0, 5.0, math.sqrt(20 / 3))),
        # unsorted, even count: median is the mean of the middle two (3 and 10)
        ([10, 1, 3, 30], Summary(4, 11.0, 6.5, math.sqrt(526 / 3))),
        ([1, 2, 9], Summary(3, 4.0, 2.0, math.sqrt(38 / 2))),
    ],
)
def test_summarise(values, expected):
    summary = summarise(values)

    assert summary.count == expected.count
    for field in ("mean", "median", "stdev"):
        got, want = getattr(summary, field), getattr(expected, field)
        if want is None:
            assert got is None, field
        else:
            assert got == pytest.approx(want, abs=1e-9), field


# --- histogram ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "band"),
    [
        (0, 0),
        (9.99, 0),
        (10, 1),
        (55, 5),
        (89.999, 8),
        (90, 9),
        (100, 9),  # the last band includes 100
        (130, 9),  # clamped to 100
        (-5, 0),  # clamped to 0
    ],
)
def test_histogram_band_edges(value, band):
    expected = [0] * 10
    expected[band] = 1

    assert histogram([value]) == expected


def test_histogram_counts_every_value_with_other_band_counts():
    assert histogram([0, 24.9, 25, 50, 50, 75, 100], bins=4) == [2, 1, 2, 2]
    assert histogram([], bins=5) == [0, 0, 0, 0, 0]
    assert sum(histogram([i / 3 for i in range(301)], bins=3)) == 301


def test_histogram_rejects_nonsense():
    with pytest.raises(ValueError):
        histogram([50], bins=0)
    with pytest.raises(ValueError):
        histogram([float("nan")])


# --- histogram_svg -----------------------------------------------------------------

COUNTS = [3, 1, 0, 0, 0, 2, 0, 0, 5, 1]


def test_histogram_svg_is_accessible_xml():
    svg = histogram_svg(COUNTS, title="Phishing basics")
    root = ET.fromstring(svg)

    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title.text == "Phishing basics"
    assert root.get("aria-labelledby").split() == [title.get("id"), desc.get("id")]
    assert desc.text.split("; ") == [
        "0–10%: 3 attempts",
        "10–20%: 1 attempt",
        "20–30%: 0 attempts",
        "30–40%: 0 attempts",
        "40–50%: 0 attempts",
        "50–60%: 2 attempts",
        "60–70%: 0 attempts",
        "70–80%: 0 attempts",
        "80–90%: 5 attempts",
        "90–100%: 1 attempt",
    ]


def test_histogram_svg_draws_labelled_bars_for_non_empty_bands():
    root = ET.fromstring(histogram_svg(COUNTS, title="Scores"))

    bars = root.findall(f"{SVG}rect")
    texts = [(t.get("class"), t.text) for t in root.iter(f"{SVG}text")]
    assert len(bars) == 5
    assert [text for cls, text in texts if cls == "stats-count"] == [
        "3",
        "1",
        "2",
        "5",
        "1",
    ]
    assert [text for cls, text in texts if cls == "stats-band"][::9] == [
        "0–10%",
        "90–100%",
    ]
    # The tallest bar is the one for 5 attempts.
    heights = [float(bar.get("height")) for bar in bars]
    assert max(heights) == heights[3]


def test_histogram_svg_has_no_styles_for_the_content_security_policy():
    svg = histogram_svg(COUNTS, title="Scores")

    assert "style" not in svg.lower()


def test_histogram_svg_escapes_the_title():
    svg = histogram_svg([1, 2], title="<script>alert(1)</script> & co")

    assert "<script>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in svg
    title = ET.fromstring(svg).find(f"{SVG}title")
    assert title.text == "<script>alert(1)</script> & co"
    assert title.get("id") == "histogram-script-alert-1-script-co-title"


def test_histogram_svg_with_all_bars_zero_is_still_a_chart():
    root = ET.fromstring(histogram_svg([0] * 10, title="No attempts yet"))

    assert root.findall(f"{SVG}rect") == []
    assert root.find(f"{SVG}line") is not None
    assert len(root.find(f"{SVG}desc").text.split("; ")) == 10


def test_histogram_svg_is_deterministic():
    first = histogram_svg(COUNTS, title="Scores", width=600, height=240)
    second = histogram_svg(list(COUNTS), title="Scores", width=600, height=240)

    assert first == second
    assert ET.fromstring(first).get("viewBox") == "0 0 600 240"


def test_histogram_svg_rejects_nonsense():
    with pytest.raises(ValueError):
        histogram_svg([], title="Empty")
    with pytest.raises(ValueError):
        histogram_svg([1, -1], title="Negative")


# --- item_analysis edge cases ------------------------------------------------------


def test_item_analysis_of_nothing_is_empty():
    assert item_analysis([], {}) == []


def test_one_attempt_has_no_discrimination():
    responses = [answer(1, 1, 1), answer(1, 2, 0)]

    stats = item_analysis(responses, scores(responses))

    assert [s.discrimination for s in stats] == [None, None]
    assert all("low discrimination" not in s.flags for s in stats)


def test_an_item_everyone_gets_right_is_too_easy_and_does_not_discriminate():
    responses = [answer(a, 1, 1) for a in (1, 2, 3)] + [
        answer(1, 2, 1),
        answer(2, 2, 0),
        answer(3, 2, 1),
    ]

    easy = item_analysis(responses, scores(responses))[0]

    assert easy.facility == 1.0
    assert easy.discrimination is None
    assert easy.flags == ("too easy",)


def test_an_item_whose_rest_scores_are_equal_does_not_discriminate():
    # Rest scores 3.6667 - 0.6667 and 3.0 - 0.0 differ only in float rounding.
    responses = [
        answer(1, 1, 0.6667, max_points=2),
        answer(1, 2, 3.0, max_points=3),
        answer(2, 1, 0.0, max_points=2),
        answer(2, 2, 3.0, max_points=3),
    ]

    item = item_analysis(responses, scores(responses))[0]

    assert item.discrimination is None


def test_choice_counts_and_mean_seconds():
    responses = [
        answer(1, 1, 1, chosen=(2,), seconds=12.0),
        answer(2, 1, 0, chosen=(3,), seconds=30.0),
        answer(3, 1, 1, chosen=(2,), seconds=6.0),
        answer(4, 1, 0, chosen=(3, 4), seconds=20.0),
        answer(5, 1, 0, chosen=(), seconds=2.0),
    ]

    item = item_analysis(responses, scores(responses))[0]

    assert item.choice_counts == {2: 2, 3: 2, 4: 1}
    assert item.mean_seconds == pytest.approx(14.0)
    assert item.answers == 5


def test_responses_for_unknown_attempts_are_ignored():
    responses = [answer(1, 1, 1), answer(2, 1, 0), answer(1, 2, 1), answer(2, 2, 1)]
    attempts = scores(responses)
    strays = [answer(99, 1, 1, chosen=(9,), seconds=999.0), answer(99, 3, 1)]

    assert item_analysis(responses + strays, attempts) == item_analysis(
        responses, attempts
    )


@pytest.mark.parametrize(
    ("fraction", "flags"),
    [
        (0.95, ("too easy",)),
        (0.9, ()),  # thresholds are strict
        (0.5, ()),
        (0.2, ()),
        (0.1, ("too hard",)),
    ],
)
def test_facility_flags(fraction, flags):
    responses = [answer(1, 1, fraction)]

    assert item_analysis(responses, scores(responses))[0].flags == flags


def test_a_hard_item_the_weaker_players_get_right_is_flagged_twice():
    # Only attempt 6, the weakest on question 2, gets question 1 right:
    # facility 1/6 < 0.2 and the item correlates negatively with the rest.
    responses = []
    for attempt in range(1, 7):
        responses.append(answer(attempt, 1, 1 if attempt == 6 else 0))
        responses.append(answer(attempt, 2, 0 if attempt == 6 else 1))

    hard = item_analysis(responses, scores(responses))[0]

    assert hard.facility == pytest.approx(1 / 6)
    assert hard.discrimination == pytest.approx(-1.0)
    assert hard.flags == ("too hard", "low discrimination")

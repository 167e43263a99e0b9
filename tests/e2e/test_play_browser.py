"""A guest plays a whole quiz in headless Chromium, with the keyboard and the mouse."""

import re

import sqlalchemy as sa

from quiz import attempts, banks
from quiz.config import QUESTIONS_DIR
from quiz.extensions import db
from quiz.models import Attempt
from tests.e2e.conftest import screenshot


def load_shipped_banks(app):
    with app.app_context():
        banks.sync_banks(banks.parse_files([QUESTIONS_DIR]))
        db.session.commit()


def correct_positions(app, attempt_id: int, position: int) -> list[int]:
    """1-based places of the correct choices as shown on the page."""
    with app.app_context():
        item = attempts.review_item(db.session.get(Attempt, attempt_id), position)
        return [i for i, c in enumerate(item.choices, start=1) if c.is_correct]


def test_guest_plays_a_whole_quiz_and_sees_result_and_leaderboard(
    app, live_server, page
):
    load_shipped_banks(app)
    page.goto(live_server + "/")
    screenshot(page, "catalogue")
    page.get_by_role("link", name="Play Supply-chain trust").click()
    page.get_by_role("link", name="Choose a display name to play").click()
    page.get_by_label("Display name").fill("Browser <b>Bea</b>")
    page.get_by_role("button", name="Start playing").click()
    page.get_by_role("button", name="Start the quiz").click()

    attempt_id = int(re.search(r"/attempts/(\d+)/", page.url).group(1))
    for position in range(1, 11):
        page.wait_for_selector("html[data-enhanced] [data-answer-form]")
        assert page.get_by_text(f"Question {position} of 10").is_visible()
        assert page.locator("progress").get_attribute("value") == str(position - 1)
        if position == 1:
            screenshot(page, "question")
        places = correct_positions(app, attempt_id, position)
        if position % 2:
            for place in places:  # keyboard: digits pick, Enter submits
                page.keyboard.press(str(place))
            page.keyboard.press("Enter")
        else:
            for place in places:  # mouse: click the labels, then the button
                page.locator(f"label[for=choice-{place}]").click()
            page.get_by_role("button", name="Submit answer").click()
        feedback = page.locator("html[data-enhanced] .feedback")
        feedback.wait_for()
        assert "Correct" in feedback.inner_text()
        assert "Source:" in feedback.inner_text()
        assert page.evaluate("document.activeElement.hasAttribute('data-focus')")
        if position == 1:
            screenshot(page, "feedback")
        page.locator("[data-next]").click()

    page.wait_for_url(re.compile(r"/results$"))
    summary = page.locator(".results-summary").inner_text()
    assert "Passed" in summary and "100%" in summary
    assert page.locator(".review-item").count() == 10
    screenshot(page, "results")

    page.get_by_role("link", name="Leaderboard").first.click()
    row = page.locator("tr.is-me")
    assert row.locator("td").first.inner_text() == "1"
    assert "Browser <b>Bea</b>" in row.inner_text()
    screenshot(page, "leaderboard")
    assert page.console_errors == []  # includes Content-Security-Policy violations
    with app.app_context():
        assert (
            db.session.scalar(sa.select(Attempt.score).where(Attempt.id == attempt_id))
            > 0
        )


def test_quiz_works_with_javascript_off(app, live_server, browser):
    load_shipped_banks(app)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(live_server + "/guest")
    page.get_by_label("Display name").fill("No Script")
    page.get_by_role("button", name="Start playing").click()
    page.goto(live_server + "/quizzes/security-pro")
    page.get_by_role("button", name="Start the quiz").click()
    assert page.get_by_text("Question 1 of 10").is_visible()
    assert page.locator(".timer").is_visible()  # the limit is shown even without JS
    page.locator("label[for=choice-1]").click()
    page.get_by_role("button", name="Submit answer").click()
    assert page.locator(".feedback h2").is_visible()
    page.get_by_role("button", name=re.compile("Finish now")).click()
    page.wait_for_url(re.compile(r"/results$"))
    assert page.locator(".review-item").count() == 10
    context.close()


def test_countdown_ends_on_time_is_up_without_reloading_again(app, live_server, page):
    from datetime import timedelta

    from quiz.models import utcnow
    from tests.factories import make_quiz

    with app.app_context():
        make_quiz("timed", minutes=5)
    page.goto(live_server + "/guest")
    page.get_by_label("Display name").fill("Clock Watcher")
    page.get_by_role("button", name="Start playing").click()
    page.goto(live_server + "/quizzes/timed")
    page.get_by_role("button", name="Start the quiz").click()
    # The question page, loaded and enhanced: a reload while it is still being
    # reached can find no page to reload.
    page.wait_for_selector("html[data-enhanced] [data-answer-form]")
    attempt_id = int(re.search(r"/attempts/(\d+)/", page.url).group(1))
    with app.app_context():
        attempt = db.session.get(Attempt, attempt_id)
        attempt.deadline = utcnow() + timedelta(seconds=4)
        db.session.commit()
    loads = []
    page.on("load", lambda _: loads.append(page.url))
    page.reload()
    page.get_by_role("heading", name="Time is up").wait_for(timeout=15_000)
    settled = len(loads)
    page.wait_for_timeout(2_500)
    assert len(loads) == settled, loads  # the "time is up" page stays put
    assert page.locator(".timer").count() == 0
    page.get_by_role("button", name="See your results").click()
    page.wait_for_url(re.compile(r"/results$"))


def test_enter_on_a_link_does_not_submit_the_answer(app, live_server, page):
    load_shipped_banks(app)
    page.goto(live_server + "/guest")
    page.get_by_label("Display name").fill("Key Board")
    page.get_by_role("button", name="Start playing").click()
    page.goto(live_server + "/quizzes/security-pro")
    page.get_by_role("button", name="Start the quiz").click()
    page.wait_for_selector("html[data-enhanced] [data-answer-form]")
    page.keyboard.press("1")  # focus starts in the form: picks the first choice
    assert page.locator("#choice-1").is_checked()
    page.get_by_role("link", name="Leaderboard").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/leaderboard$"))
    with app.app_context():
        from quiz.models import Response

        assert db.session.scalar(sa.select(sa.func.count()).select_from(Response)) == 0

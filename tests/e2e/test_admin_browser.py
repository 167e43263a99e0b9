"""An admin builds a quiz in the browser; a guest plays it to the end."""

import re

import sqlalchemy as sa

from quiz.extensions import db
from quiz.models import Attempt
from tests.e2e.conftest import screenshot
from tests.factories import PASSWORD, make_account


def fill_question(page, prompt, qtype, choices=(), answer=None):
    page.get_by_label("Type").select_option(qtype)
    page.get_by_label("Question", exact=True).fill(prompt)
    for number, (text, correct) in enumerate(choices):
        page.get_by_label(f"Text of choice {number + 1}").fill(text)
        if correct:
            page.get_by_label(f"Choice {number + 1} is correct").check()
    if answer is not None:
        page.get_by_label(answer, exact=True).check()
    page.get_by_label("Explanation").fill("Reporting early lets the team contain it.")
    page.get_by_label("Source").fill(
        "Phishing attacks: defending your organisation (UK NCSC)"
    )


def test_admin_creates_and_publishes_a_quiz_that_a_guest_plays(
    app, live_server, page, browser
):
    with app.app_context():
        make_account("admin@example.org", role="admin")
    page.goto(live_server + "/auth/login")
    page.get_by_label("E-mail address").fill("admin@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Admin", exact=True).click()
    page.get_by_role("link", name="New quiz").first.click()
    page.get_by_label("Stable id").fill("report-it")
    page.get_by_label("Title").fill("Report it")
    page.get_by_label("Theme").fill("Incident reporting")
    page.get_by_label("Description").fill("When and how to report a security incident.")
    page.get_by_label("Pass mark (%)").fill("50")
    page.get_by_role("button", name="Create quiz").click()
    assert "created" in page.locator(".flash").inner_text()

    questions = [
        (
            "You clicked a phishing link. What first?",
            "single",
            [("Report it to the security team", True), ("Wait and see", False)],
            None,
        ),
        (
            "Which should you report? Select all that apply.",
            "multiple",
            [
                ("A lost badge", True),
                ("A suspicious call", True),
                ("A colleague's new haircut", False),
            ],
            None,
        ),
        ("Reporting a mistake quickly limits the damage.", "true_false", [], "True"),
    ]
    for number, (prompt, qtype, choices, answer) in enumerate(questions):
        page.get_by_role("link", name="Add a question").click()
        fill_question(page, prompt, qtype, choices, answer)
        if number == 1:
            page.get_by_role("button", name="Preview").click()
            assert page.locator(".preview").is_visible()
            screenshot(page, "admin-question-preview")
        page.get_by_role("button", name="Save question").click()
        assert "saved" in page.locator(".flash").inner_text()
    screenshot(page, "admin-quiz")
    page.get_by_role("button", name="Publish").click()
    assert "publish done" in page.locator(".flash").inner_text()

    guest = browser.new_context().new_page()
    guest.goto(live_server + "/")
    guest.get_by_role("link", name="Play Report it").click()
    guest.get_by_role("link", name="Choose a display name to play").click()
    guest.get_by_label("Display name").fill("New Starter")
    guest.get_by_role("button", name="Start playing").click()
    guest.get_by_role("button", name="Start the quiz").click()
    for _ in range(3):
        guest.wait_for_selector("[data-answer-form]")
        guest.locator("label[for=choice-1]").click()
        guest.get_by_role("button", name="Submit answer").click()
        guest.locator("[data-next]").click()
    guest.wait_for_url(re.compile(r"/results$"))
    assert guest.locator(".review-item").count() == 3
    screenshot(guest, "guest-results-of-authored-quiz")
    with app.app_context():
        assert db.session.scalar(sa.select(Attempt.finished_at)) is not None

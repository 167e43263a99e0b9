"""A trainer sets up a cohort; a learner joins and finishes; the trainer sees it."""

import csv
import io
import re

from tests.e2e.conftest import screenshot
from tests.factories import PASSWORD, make_account, make_quiz


def sign_in(page, base, email):
    page.goto(base + "/auth/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_cohort_from_creation_to_csv(app, live_server, browser):
    with app.app_context():
        make_quiz("alpha")
        make_account("tia@example.org", role="trainer", name="Tia")
        make_account("lee@example.org", role="player", name="Lee")
    trainer = browser.new_context(accept_downloads=True).new_page()
    sign_in(trainer, live_server, "tia@example.org")
    trainer.goto(live_server + "/trainer/cohorts/new")
    trainer.get_by_label("Name").fill("Finance team")
    trainer.get_by_role("button", name="Create cohort").click()
    trainer.get_by_label("Quiz").select_option("alpha")
    trainer.get_by_role("button", name="Assign").click()
    code = trainer.locator(".join-code").inner_text()
    screenshot(trainer, "trainer-cohort")

    learner = browser.new_context().new_page()
    sign_in(learner, live_server, "lee@example.org")
    learner.goto(f"{live_server}/join/{code}")
    learner.get_by_role("button", name="Join").click()
    learner.get_by_role("link", name="Test bank alpha", exact=True).click()
    learner.get_by_role("button", name="Start the quiz").click()
    for _ in range(3):
        learner.wait_for_selector("[data-answer-form]")
        learner.locator("label[for=choice-1]").click()
        learner.get_by_role("button", name="Submit answer").click()
        learner.locator("[data-next]").click()
    learner.wait_for_url(re.compile(r"/results$"))
    learner.goto(live_server + "/cohorts")
    assert "completed" in learner.locator("table").inner_text()

    trainer.get_by_role("link", name="Results").first.click()
    row = trainer.locator("table.results tbody tr").first
    assert "Lee" in row.inner_text() and "completed" in row.inner_text()
    screenshot(trainer, "trainer-results")
    with trainer.expect_download() as info:
        trainer.get_by_role("link", name="Attempts CSV").click()
    download = info.value
    assert download.suggested_filename.startswith("attempts-finance-team-")
    rows = list(csv.reader(io.StringIO(download.path().read_text(encoding="utf-8"))))
    assert rows[1][1] == "Lee" and rows[1][3] == "Finance team"
    trainer.goto(f"{live_server}/trainer/statistics?quiz=alpha&cohort=1")
    assert trainer.locator("svg[role=img]").is_visible()
    screenshot(trainer, "trainer-statistics")

"""Trainers: cohorts, joining, assignments, results, exports and statistics."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from quiz import attempts, cohorts
from quiz.extensions import db
from quiz.models import Attempt, AuditEvent, Cohort, CohortMember
from tests.factories import PASSWORD, make_account, make_quiz


def sign_in(app, email):
    client = app.test_client()
    response = client.post("/auth/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 302
    return client


@pytest.fixture
def world(app):
    """Two trainers, an admin, three learners, a quiz; Tia's cohort with two members."""
    with app.app_context():
        quiz = make_quiz("alpha")
        tia = make_account("tia@example.org", role="trainer", name="Tia")
        make_account("tom@example.org", role="trainer", name="Tom")
        make_account("admin@example.org", role="admin", name="Ada")
        learners = [
            make_account(f"{n}@example.org", role="player", name=n.capitalize())
            for n in ("lee", "max", "out")
        ]
        cohort = cohorts.create(tia, "Finance team", "Q4 refresher")
        for learner in learners[:2]:
            cohorts.join(learner, cohort.join_code)
        cohorts.assign(tia, cohort, quiz, None)
        db.session.commit()
        return {
            "cohort": cohort.id,
            "code": cohort.join_code,
            "quiz": quiz.slug,
            "learners": [u.id for u in learners],
        }


def finish_attempt(app, user_id, right: int, *, days_ago: float = 0):
    """A finished attempt at alpha answering ``right`` questions right, the rest wrong."""
    with app.app_context():
        from quiz.models import Quiz, User

        user = db.session.get(User, user_id)
        quiz = db.session.scalar(sa.select(Quiz).where(Quiz.slug == "alpha"))
        attempt = attempts.start(user, quiz)
        for position in (1, 2, 3):
            item = attempts.review_item(attempt, position)
            good = position <= right
            chosen = [c.id for c in item.choices if c.is_correct == good][:1]
            if item.revision.type == "multiple" and good:
                chosen = [c.id for c in item.choices if c.is_correct]
            attempts.answer(attempt, position, chosen)
        shift = timedelta(days=days_ago)
        attempt.started_at -= shift
        attempt.finished_at -= shift
        db.session.commit()
        return attempt.id


def test_trainer_creates_a_cohort_and_a_player_joins_with_the_link(app):
    with app.app_context():
        make_account("tia@example.org", role="trainer")
        make_account("lee@example.org", role="player", name="Lee")
    trainer = sign_in(app, "tia@example.org")
    response = trainer.post(
        "/trainer/cohorts/new", data={"name": "Sales", "description": ""}
    )
    page = trainer.get(response.headers["Location"]).get_data(as_text=True)
    code = re.search(r'class="join-code">(\w+)<', page).group(1)
    assert f"/join/{code}" in page
    learner = sign_in(app, "lee@example.org")
    invite = learner.get(f"/join/{code}").get_data(as_text=True)
    assert "Join “Sales”" in invite
    assert learner.post("/join", data={"code": code.lower()}).status_code == 302
    assert (
        learner.post("/join", data={"code": code}).status_code == 302
    )  # twice: no change
    assert "Sales" in learner.get("/cohorts").get_data(as_text=True)
    assert "Lee" in trainer.get(response.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        assert (
            db.session.scalar(sa.select(sa.func.count()).select_from(CohortMember)) == 1
        )


def test_a_wrong_code_is_explained_and_guests_must_register(app, world):
    learner = sign_in(app, "out@example.org")
    response = learner.post("/join", data={"code": "WRONG123"})
    assert response.status_code == 422
    assert "No cohort has this join code" in response.get_data(as_text=True)
    guest = app.test_client()
    guest.post("/guest", data={"display_name": "Visitor"})
    response = guest.get(f"/join/{world['code']}")
    assert (
        response.status_code == 302 and "/auth/register" in response.headers["Location"]
    )


def test_a_member_sees_assignments_with_status_and_can_leave(app, world):
    lee = sign_in(app, "lee@example.org")
    html = lee.get("/cohorts").get_data(as_text=True)
    assert "Test bank alpha" in html and "not started" in html
    finish_attempt(app, world["learners"][0], right=3)
    assert "completed" in lee.get("/cohorts").get_data(as_text=True)
    lee.post(f"/cohorts/{world['cohort']}/leave")
    assert "You are not in a cohort yet." in lee.get("/cohorts").get_data(as_text=True)


def test_statuses_in_progress_and_past_due(app, world):
    lee, max_ = world["learners"][:2]
    with app.app_context():
        from quiz.models import Quiz, User

        quiz = db.session.scalar(sa.select(Quiz))
        attempts.start(db.session.get(User, lee), quiz)
        db.session.commit()
        cohort = db.session.get(Cohort, world["cohort"])
        rows = {r.user_id: r.status for r in cohorts.progress(cohort, quiz)}
        assert rows == {lee: "in progress", max_: "not started"}
        cohort.assignments[0].due_at = datetime.now(UTC) - timedelta(days=1)
        db.session.commit()
        rows = {r.user_id: r.status for r in cohorts.progress(cohort, quiz)}
        assert rows == {lee: "past due", max_: "past due"}


def test_dashboard_shows_each_member_with_filters_and_sorting(app, world):
    lee, max_ = world["learners"][:2]
    finish_attempt(app, lee, right=1, days_ago=10)
    finish_attempt(app, lee, right=3)
    finish_attempt(app, max_, right=2)
    trainer = sign_in(app, "tia@example.org")
    url = f"/trainer/cohorts/{world['cohort']}/results?quiz=alpha"
    html = trainer.get(url).get_data(as_text=True)
    rows = re.findall(
        r'<tr>\s*<td><a href="/trainer/cohorts/\d+/members/\d+">(\w+)</a>', html
    )
    assert rows == ["Lee", "Max"]
    assert "6 / 6 (100%)" in html and "completed" in html
    html = trainer.get(url + "&sort=score&dir=asc").get_data(as_text=True)
    assert re.findall(r'members/\d+">(\w+)</a>', html) == ["Max", "Lee"]
    week_ago = (datetime.now(UTC) - timedelta(days=7)).date().isoformat()
    old_only = trainer.get(f"{url}&until={week_ago}").get_data(as_text=True)
    assert "1 / 6 (17%)" in old_only


def test_drill_down_to_a_member_and_an_attempt_review(app, world):
    attempt_id = finish_attempt(app, world["learners"][0], right=2)
    trainer = sign_in(app, "tia@example.org")
    member = trainer.get(
        f"/trainer/cohorts/{world['cohort']}/members/{world['learners'][0]}"
    )
    review_url = f"/trainer/cohorts/{world['cohort']}/attempts/{attempt_id}"
    assert review_url in member.get_data(as_text=True)
    review = trainer.get(review_url).get_data(as_text=True)
    assert (
        "Which port does HTTPS use by default?" in review and "Correct answer" in review
    )


def test_another_trainer_sees_nothing_of_this_cohort(app, world):
    attempt_id = finish_attempt(app, world["learners"][0], right=2)
    tom = sign_in(app, "tom@example.org")
    cohort = world["cohort"]
    for url in (
        f"/trainer/cohorts/{cohort}",
        f"/trainer/cohorts/{cohort}/results",
        f"/trainer/cohorts/{cohort}/members/{world['learners'][0]}",
        f"/trainer/attempts/{attempt_id}",
        f"/trainer/export/attempts.csv?cohort={cohort}",
        f"/trainer/statistics?cohort={cohort}&quiz=alpha",
        f"/cohorts/{cohort}/leaderboard/alpha",
    ):
        assert tom.get(url).status_code == 404, url
    assert (
        tom.post(
            f"/trainer/cohorts/{cohort}/assignments", data={"quiz": "alpha"}
        ).status_code
        == 404
    )
    assert "Finance team" not in tom.get("/trainer/").get_data(as_text=True)
    # Without a cohort a trainer may not export everyone.
    assert tom.get("/trainer/export/attempts.csv").status_code == 403
    admin = sign_in(app, "admin@example.org")
    assert (
        admin.get(f"/trainer/cohorts/{cohort}/attempts/{attempt_id}").status_code == 200
    )
    assert "Finance team" in admin.get("/trainer/").get_data(as_text=True)


def test_players_cannot_reach_trainer_pages(app, world):
    lee = sign_in(app, "lee@example.org")
    assert lee.get("/trainer/").status_code == 403
    assert lee.get(f"/trainer/cohorts/{world['cohort']}/results").status_code == 403


def test_cohort_leaderboard_lists_members_only(app, world):
    finish_attempt(app, world["learners"][0], right=3)
    finish_attempt(app, world["learners"][2], right=3)  # not a member
    lee = sign_in(app, "lee@example.org")
    html = lee.get(f"/cohorts/{world['cohort']}/leaderboard/alpha").get_data(
        as_text=True
    )
    assert "Finance team: leaderboard" in html and "Lee" in html and "Out" not in html
    outsider = sign_in(app, "out@example.org")
    assert (
        outsider.get(f"/cohorts/{world['cohort']}/leaderboard/alpha").status_code == 404
    )


def test_attempts_csv_export_with_filters(app, world):
    finish_attempt(app, world["learners"][0], right=3)
    finish_attempt(app, world["learners"][2], right=1)  # outside the cohort
    trainer = sign_in(app, "tia@example.org")
    response = trainer.get(
        f"/trainer/export/attempts.csv?cohort={world['cohort']}&bom=1"
    )
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert "attempts-finance-team-" in disposition and disposition.startswith(
        "attachment"
    )
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:4] == ["attempt", "display name", "email", "cohorts"]
    assert len(rows) == 2 and rows[1][1] == "Lee" and rows[1][3] == "Finance team"
    assert rows[1][8:12] == ["6.0", "6.0", "100.0", "yes"]
    assert "password" not in text.lower() and "argon2" not in text
    with app.app_context():
        event = db.session.scalar(
            sa.select(AuditEvent).where(AuditEvent.action == "export.attempts")
        )
        assert event.details["filters"]["cohort"] == "Finance team"


def test_attempts_export_times_are_utc_seconds(app, world):
    attempt_id = finish_attempt(app, world["learners"][0], right=2, days_ago=1.5)
    with app.app_context():
        attempt = db.session.get(Attempt, attempt_id)
        started, finished = attempt.started_at, attempt.finished_at
    admin = sign_in(app, "admin@example.org")
    text = admin.get("/trainer/export/attempts.csv").get_data(as_text=True)
    row = list(csv.reader(io.StringIO(text)))[1]
    assert row[5:7] == [
        started.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        finished.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    ]


def test_responses_export_lists_every_answer(app, world):
    attempt_id = finish_attempt(app, world["learners"][0], right=2)
    trainer = sign_in(app, "tia@example.org")
    text = trainer.get(
        f"/trainer/export/responses.csv?cohort={world['cohort']}&quiz=alpha"
    ).get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "attempt",
        "display name",
        "quiz",
        "question id",
        "revision",
        "chosen options",
        "correct",
        "points",
        "seconds",
    ]
    assert [r[3] for r in rows[1:]] == ["alpha-single", "alpha-multiple", "alpha-tf"]
    assert rows[1][0] == str(attempt_id) and rows[1][5] == "443" and rows[1][6] == "yes"


@pytest.mark.parametrize(
    "payload", ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]
)
def test_exports_neutralise_formula_payloads(app, world, payload):
    with app.app_context():
        from quiz.models import User

        db.session.get(User, world["learners"][0]).display_name = payload
        db.session.commit()
    finish_attempt(app, world["learners"][0], right=1)
    trainer = sign_in(app, "tia@example.org")
    text = trainer.get(
        f"/trainer/export/attempts.csv?cohort={world['cohort']}"
    ).get_data(as_text=True)
    name = list(csv.reader(io.StringIO(text)))[1][1]
    assert name == "'" + payload
    from openpyxl import load_workbook

    data = trainer.get(f"/trainer/export/attempts.xlsx?cohort={world['cohort']}").data
    sheet = load_workbook(io.BytesIO(data)).active
    cell = sheet.cell(row=2, column=2)
    # The file stores a carriage return as the OOXML escape _x000D_.
    assert cell.data_type == "s" and cell.value.replace("_x000D_", "\r") == payload


def test_statistics_page_and_csv(app, world):
    for user, right in zip(world["learners"][:2], (3, 1), strict=True):
        finish_attempt(app, user, right=right)
    trainer = sign_in(app, "tia@example.org")
    html = trainer.get(
        f"/trainer/statistics?quiz=alpha&cohort={world['cohort']}"
    ).get_data(as_text=True)
    assert "<svg" in html and 'role="img"' in html and "style=" not in html
    assert "alpha-single" in html and "Facility" in html
    text = trainer.get(
        f"/trainer/statistics.csv?quiz=alpha&cohort={world['cohort']}"
    ).get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "question id" and len(rows) == 4
    facility = {r[0]: float(r[3]) for r in rows[1:]}
    assert facility["alpha-single"] == 1.0  # both right
    assert facility["alpha-multiple"] == 0.5


def test_statistics_with_no_attempts_and_one_attempt(app, world):
    trainer = sign_in(app, "tia@example.org")
    url = f"/trainer/statistics?quiz=alpha&cohort={world['cohort']}"
    assert "No finished attempts in this selection yet." in trainer.get(url).get_data(
        as_text=True
    )
    finish_attempt(app, world["learners"][0], right=2)
    html = trainer.get(url).get_data(as_text=True)
    assert "<svg" in html and "–" in html  # no discrimination from a single attempt


def test_cli_export_attempts(app, world, runner, tmp_path):
    finish_attempt(app, world["learners"][0], right=3)
    output = tmp_path / "out.csv"
    result = runner.invoke(
        args=[
            "export",
            "attempts",
            "--format",
            "csv",
            "--cohort",
            "Finance team",
            "--since",
            "2000-01-01",
            "--output",
            str(output),
        ]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(output.open(encoding="utf-8")))
    assert len(rows) == 2 and rows[1][1] == "Lee"
    xlsx = tmp_path / "out.xlsx"
    result = runner.invoke(
        args=[
            "export",
            "responses",
            "--format",
            "xlsx",
            "--quiz",
            "alpha",
            "--output",
            str(xlsx),
        ]
    )
    assert result.exit_code == 0 and xlsx.stat().st_size > 0
    bad = runner.invoke(args=["export", "attempts", "--cohort", "Nope"])
    assert bad.exit_code == 1 and "No cohort named 'Nope'" in bad.output
    bad = runner.invoke(args=["export", "attempts", "--since", "yesterday"])
    assert bad.exit_code == 2 and "is not a date" in bad.output


def test_trainer_manages_assignments_members_and_code(app, world):
    trainer = sign_in(app, "tia@example.org")
    cohort = world["cohort"]
    with app.app_context():
        make_quiz("beta")
    trainer.post(
        f"/trainer/cohorts/{cohort}/assignments",
        data={"quiz": "beta", "due": "2030-01-31"},
    )
    html = trainer.get(f"/trainer/cohorts/{cohort}").get_data(as_text=True)
    assert "31 Jan 2030" in html
    trainer.post(f"/trainer/cohorts/{cohort}/code")
    with app.app_context():
        assert db.session.get(Cohort, cohort).join_code != world["code"]
    trainer.post(f"/trainer/cohorts/{cohort}/members/{world['learners'][0]}/remove")
    with app.app_context():
        assert (
            db.session.scalar(sa.select(sa.func.count()).select_from(CohortMember)) == 1
        )
        assignment_id = db.session.get(Cohort, cohort).assignments[0].id
    trainer.post(f"/trainer/cohorts/{cohort}/assignments/{assignment_id}/remove")
    with app.app_context():
        assert len(db.session.get(Cohort, cohort).assignments) == 1


def test_a_trainer_sharing_a_member_sees_only_their_own_cohort_and_quizzes(app, world):
    """Tom has his own cohort with Lee in it, but Lee's work for Tia stays Tia's."""
    attempt_id = finish_attempt(app, world["learners"][0], right=2)  # Tia's quiz
    with app.app_context():
        from quiz.models import User

        tom = db.session.scalar(sa.select(User).where(User.email == "tom@example.org"))
        mine = cohorts.create(tom, "Toms group")
        cohorts.join(db.session.get(User, world["learners"][0]), mine.join_code)
        make_quiz("beta")
        from quiz.models import Quiz

        cohorts.assign(
            tom,
            mine,
            db.session.scalar(sa.select(Quiz).where(Quiz.slug == "beta")),
            None,
        )
        db.session.commit()
        tom_cohort = mine.id
    client = sign_in(app, "tom@example.org")
    member = client.get(f"/trainer/cohorts/{tom_cohort}/members/{world['learners'][0]}")
    assert member.status_code == 200 and "Test bank alpha" not in member.get_data(
        as_text=True
    )
    assert (
        client.get(f"/trainer/cohorts/{tom_cohort}/attempts/{attempt_id}").status_code
        == 404
    )
    text = client.get(f"/trainer/export/attempts.csv?cohort={tom_cohort}").get_data(
        as_text=True
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 1  # Lee's alpha attempt is not Tom's to see
    assert (
        client.get(
            f"/trainer/export/attempts.csv?cohort={tom_cohort}&quiz=alpha"
        ).status_code
        == 404
    )
    assert (
        client.get(f"/trainer/statistics?cohort={tom_cohort}&quiz=alpha").status_code
        == 404
    )
    # The cohorts column names only Tom's own cohorts.
    finish_attempt_beta = None
    with app.app_context():
        from quiz.models import Quiz, User

        lee = db.session.get(User, world["learners"][0])
        beta = db.session.scalar(sa.select(Quiz).where(Quiz.slug == "beta"))
        attempt = attempts.start(lee, beta)
        attempts.finish(attempt)
        db.session.commit()
    text = client.get(f"/trainer/export/attempts.csv?cohort={tom_cohort}").get_data(
        as_text=True
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 2 and rows[1][3] == "Toms group"
    assert finish_attempt_beta is None


def test_best_score_percentage_and_pass_come_from_one_attempt(app, world):
    with app.app_context():
        from quiz.models import Quiz, User

        lee = db.session.get(User, world["learners"][0])
        quiz = db.session.scalar(sa.select(Quiz))
        for score, maximum, passed in ((8, 10, True), (9, 20, False)):
            attempt = Attempt(
                user_id=lee.id,
                quiz_id=quiz.id,
                pass_mark=50,
                score=score,
                max_score=maximum,
                passed=passed,
                duration_ms=1000,
                finished_at=datetime.now(UTC),
            )
            db.session.add(attempt)
        db.session.commit()
        cohort = db.session.get(Cohort, world["cohort"])
        row = next(r for r in cohorts.progress(cohort, quiz) if r.user_id == lee.id)
        assert (row.best_score, row.max_score, row.passed) == (8, 10, True)
        assert row.percentage == 80


def test_leaving_a_cohort_you_are_not_in_is_404(app, world):
    outsider = sign_in(app, "out@example.org")
    response = outsider.post(f"/cohorts/{world['cohort']}/leave")
    assert response.status_code == 404
    assert "Finance team" not in response.get_data(as_text=True)


def test_cohort_leaderboard_of_an_unpublished_quiz_is_404(app, world):
    with app.app_context():
        from quiz.models import Quiz

        db.session.scalar(sa.select(Quiz)).is_published = False
        db.session.commit()
    lee = sign_in(app, "lee@example.org")
    assert lee.get(f"/cohorts/{world['cohort']}/leaderboard/alpha").status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/trainer/cohorts/{c}/results?quiz=alpha&until=9999-12-31",
        "/trainer/export/attempts.csv?cohort={c}&until=9999-12-31",
        "/trainer/statistics?cohort={c}&quiz=alpha&until=9999-12-31",
        "/trainer/cohorts/99999999999999999999",
        "/trainer/export/attempts.csv?cohort=99999999999999999999",
        "/cohorts/99999999999999999999/leaderboard/alpha",
        "/trainer/statistics?cohort={c}&quiz=alpha&_method=POST",
        "/trainer/export/attempts.csv?cohort={c}&since=last-week",
    ],
)
def test_odd_input_never_crashes(app, world, url):
    trainer = sign_in(app, "tia@example.org")
    response = trainer.get(url.format(c=world["cohort"]))
    response.close()
    assert response.status_code in (200, 400, 404)


def test_cli_refuses_an_ambiguous_cohort_name(app, world, runner):
    with app.app_context():
        from quiz.models import User

        tia = db.session.scalar(sa.select(User).where(User.email == "tia@example.org"))
        cohorts.create(tia, "Finance team")
        db.session.commit()
    result = runner.invoke(args=["export", "attempts", "--cohort", "Finance team"])
    assert result.exit_code == 1 and "name one with --cohort-id" in result.output

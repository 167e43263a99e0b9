"""Admin authoring through the test client: quizzes, questions, bank files, users."""

import re

import pytest
import sqlalchemy as sa

from quiz import attempts
from quiz.extensions import db
from quiz.models import Attempt, AuditEvent, BankUpload, Question, Quiz, User
from tests.factories import (
    PASSWORD,
    bank_yaml,
    make_account,
    make_player,
    make_quiz,
)
from tests.factories import (
    upload_bank as upload,
)


def count(app, model, *where):
    with app.app_context():
        return db.session.scalar(
            sa.select(sa.func.count()).select_from(model).where(*where)
        )


def audit_actions(app) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id))
        )


QUIZ_FORM = {
    "slug": "phishing-basics",
    "title": "Phishing basics",
    "theme": "Phishing",
    "description": "Spot and report phishing.",
    "questions_per_attempt": "",
    "shuffle": "y",
    "time_limit_minutes": "0",
    "pass_mark": "60",
}


def question_form(**overrides):
    data = {
        "type": "single",
        "difficulty": "medium",
        "prompt": "What should you do with a suspicious e-mail?",
        "choices-0-text": "Report it with the report button",
        "choices-0-correct": "y",
        "choices-1-text": "Forward it to colleagues to warn them",
        "choices-2-text": "Reply and ask whether it is genuine",
        "explanation": "Reporting lets the security team act; forwarding spreads it.",
        "source": "Phishing attacks: defending your organisation (UK NCSC)",
        "tags": "Phishing, reporting",
        "save": "Save question",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_create_quiz_add_questions_of_each_type_and_publish(admin, app):
    response = admin.post("/admin/quizzes/new", data=QUIZ_FORM)
    assert response.headers["Location"] == "/admin/quizzes/phishing-basics"
    quiz_html = admin.get("/admin/quizzes/phishing-basics").get_data(as_text=True)
    assert "draft" in quiz_html and "No questions yet" in quiz_html

    refused = admin.post(
        "/admin/quizzes/phishing-basics/status",
        data={"action": "publish"},
        follow_redirects=True,
    )
    assert "Add at least one question before publishing." in refused.get_data(
        as_text=True
    )

    new = "/admin/quizzes/phishing-basics/questions/new"
    assert admin.post(new, data=question_form(slug="pb-report")).status_code == 302
    multiple = question_form(
        slug="pb-signs",
        type="multiple",
        prompt="Which are signs of phishing? Select all that apply.",
        **{
            "choices-0-text": "Urgent demand to act",
            "choices-1-text": "Unexpected attachment",
            "choices-1-correct": "y",
            "choices-2-text": "Your colleague's usual signature",
        },
    )
    assert admin.post(new, data=multiple).status_code == 302
    true_false = question_form(
        slug="pb-tf",
        type="true_false",
        prompt="Phishing can arrive by text message.",
        answer="true",
        **{
            "choices-0-text": "",
            "choices-1-text": "",
            "choices-2-text": "",
            "choices-0-correct": None,
        },
    )
    assert admin.post(new, data=true_false).status_code == 302

    with app.app_context():
        quiz = db.session.scalar(sa.select(Quiz).where(Quiz.slug == "phishing-basics"))
        types = [q.current.type for q in quiz.questions]
        assert types == ["single", "multiple", "true_false"]
        assert quiz.questions[0].current.tags == ["phishing", "reporting"]
        assert [c.is_correct for c in quiz.questions[1].current.choices] == [
            True,
            True,
            False,
        ]
        assert [c.text for c in quiz.questions[2].current.choices] == ["True", "False"]

    admin.post("/admin/quizzes/phishing-basics/status", data={"action": "publish"})
    assert "Phishing basics" in admin.get("/").get_data(as_text=True)
    assert audit_actions(app) == [
        "quiz.create",
        "question.create",
        "question.create",
        "question.create",
        "quiz.publish",
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"prompt": ""}, "is empty"),
        ({"choices-0-correct": None}, "no choice is marked"),
        (
            {"choices-1-correct": "y"},
            "a single question needs exactly one correct choice",
        ),
        ({"choices-1-text": "", "choices-2-text": ""}, "needs 2 to 8 choices, has 1"),
        (
            {"type": "multiple", "choices-1-correct": "y", "choices-2-correct": "y"},
            "a multiple question needs at least one wrong choice",
        ),
        ({"type": "true_false"}, "must be true or false"),
        ({"source": ""}, "is empty"),
        ({"slug": "Not A Slug"}, "Use 3-64 lowercase letters, digits and hyphens."),
        ({"points": "500"}, "Number must be between 1 and 100."),
    ],
)
def test_question_form_uses_the_bank_rules(admin, app, overrides, message):
    with app.app_context():
        make_quiz("alpha")
    response = admin.post(
        "/admin/quizzes/alpha/questions/new", data=question_form(**overrides)
    )
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert count(app, Question) == 3


def test_add_a_choice_row_and_preview_without_saving(admin, app):
    with app.app_context():
        make_quiz("alpha")
    url = "/admin/quizzes/alpha/questions/new"
    more = question_form(save=None, add_choice="Add a choice")
    html = admin.post(url, data=more).get_data(as_text=True)
    assert 'name="choices-3-text"' in html
    preview = admin.post(url, data=question_form(save=None, preview="Preview"))
    html = preview.get_data(as_text=True)
    assert "Preview – as a player sees it" in html
    assert 'type="radio"' in html and "Report it with the report button" in html
    assert count(app, Question) == 3


def test_choices_can_be_removed_and_reordered(admin, app):
    with app.app_context():
        make_quiz("alpha")
    data = question_form(
        slug="alpha-order",
        **{
            "choices-0-order": "3",
            "choices-1-order": "1",
            "choices-2-order": "2",
            "choices-2-remove": "y",
        },
    )
    assert (
        admin.post("/admin/quizzes/alpha/questions/new", data=data).status_code == 302
    )
    with app.app_context():
        question = db.session.scalar(
            sa.select(Question).where(Question.slug == "alpha-order")
        )
        assert [c.text for c in question.current.choices] == [
            "Forward it to colleagues to warn them",
            "Report it with the report button",
        ]


def test_editing_an_answered_question_adds_a_revision_and_keeps_the_past(admin, app):
    with app.app_context():
        quiz = make_quiz("alpha")
        attempt = attempts.start(make_player(), quiz)
        item = attempts.review_item(attempt, 1)
        attempts.answer(attempt, 1, [c.id for c in item.choices if c.is_correct])
        attempts.finish(attempt)
        db.session.commit()
        attempt_id = attempt.id
    form_html = admin.get("/admin/questions/alpha-single").get_data(as_text=True)
    assert "Which port does HTTPS use by default?" in form_html
    edited = question_form(
        prompt="Which TCP port does HTTPS use?",
        **{"choices-0-text": "443", "choices-1-text": "80", "choices-2-text": "22"},
    )
    assert admin.post("/admin/questions/alpha-single", data=edited).status_code == 302
    with app.app_context():
        question = db.session.scalar(
            sa.select(Question).where(Question.slug == "alpha-single")
        )
        assert question.revision == 2 and question.current.prompt.startswith(
            "Which TCP"
        )
        attempt = db.session.get(Attempt, attempt_id)
        review = attempts.review(attempt)
        assert review[0].revision.prompt == "Which port does HTTPS use by default?"
        assert attempt.score == 1.0
    unchanged = admin.post("/admin/questions/alpha-single", data=edited)
    assert unchanged.status_code == 302
    assert audit_actions(app).count("question.edit") == 1


def test_archive_instead_of_delete(admin, app):
    with app.app_context():
        make_quiz("alpha")
    admin.post("/admin/questions/alpha-tf/status", data={"action": "archive"})
    assert count(app, Question, Question.is_archived.is_(True)) == 1
    assert count(app, Question) == 3
    html = admin.get("/admin/questions?archived=1").get_data(as_text=True)
    assert "alpha-tf" in html
    admin.post("/admin/questions/alpha-tf/status", data={"action": "restore"})
    assert count(app, Question, Question.is_archived.is_(True)) == 0
    assert (
        admin.post("/admin/questions/alpha-tf/status", data={"action": "x"}).status_code
        == 400
    )


def test_question_list_filters_and_search(admin, app):
    with app.app_context():
        make_quiz("alpha")
        make_quiz("beta")

    def listed(query):
        html = admin.get("/admin/questions" + query).get_data(as_text=True)
        return sorted(set(re.findall(r"<code class=\"meta\">([\w-]+)</code>", html)))

    assert len(listed("")) == 6
    assert listed("?quiz=beta&type=true_false") == ["beta-tf"]
    assert listed("?difficulty=hard") == ["alpha-multiple", "beta-multiple"]
    assert listed("?q=HTTPS") == ["alpha-single", "beta-single"]
    assert listed("?q=100%25") == []  # a LIKE wildcard is searched for literally
    assert listed("?tag=nothing") == []


def test_question_preview_page(admin, app):
    with app.app_context():
        make_quiz("alpha")
    html = admin.get("/admin/questions/alpha-multiple/preview").get_data(as_text=True)
    assert "Select all that apply." in html and 'type="checkbox"' in html


def test_quiz_settings_edit_unpublish_archive_restore(admin, app):
    with app.app_context():
        make_quiz("alpha")
    data = {
        **QUIZ_FORM,
        "slug": "ignored",
        "title": "Renamed",
        "time_limit_minutes": "9",
    }
    assert admin.post("/admin/quizzes/alpha", data=data).status_code == 302
    bad = admin.post("/admin/quizzes/alpha", data={**data, "pass_mark": "101"})
    assert bad.status_code == 422 and "Use a percentage from 0 to 100." in bad.get_data(
        as_text=True
    )
    for action in ("unpublish", "publish", "archive"):
        admin.post("/admin/quizzes/alpha/status", data={"action": action})
    with app.app_context():
        quiz = db.session.scalar(sa.select(Quiz))
        assert (
            quiz.title == "Renamed"
            and quiz.time_limit_minutes == 9
            and quiz.slug == "alpha"
        )
        assert quiz.is_archived and not quiz.is_published
    assert admin.get("/quizzes/alpha").status_code == 404
    admin.post("/admin/quizzes/alpha/status", data={"action": "restore"})
    assert audit_actions(app) == [
        "quiz.edit",
        "quiz.unpublish",
        "quiz.publish",
        "quiz.archive",
        "quiz.restore",
    ]


def test_upload_review_and_confirm_an_import(admin, app):
    response = upload(admin, bank_yaml("gamma").encode())
    assert response.status_code == 302
    review = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "Import “Test bank gamma”?" in review and "It creates a new quiz" in review
    assert count(app, Quiz) == 0
    upload_id = int(response.headers["Location"].rsplit("/", 1)[1])
    applied = admin.post(
        f"/admin/imports/{upload_id}/apply", data={"digest": digest(review)}
    )
    assert applied.headers["Location"] == "/admin/quizzes/gamma"
    assert count(app, Question) == 3 and count(app, BankUpload) == 0
    assert count(app, Quiz, Quiz.is_published.is_(False)) == 1  # a new quiz is a draft
    again = admin.post(
        f"/admin/imports/{upload_id}/apply",
        data={"digest": digest(review)},
        follow_redirects=True,
    )
    assert "already imported or discarded" in again.get_data(as_text=True)
    assert audit_actions(app) == ["bank.upload", "bank.import"]


def digest(review_html: str) -> str:
    return re.search(r'name="digest" value="([0-9a-f]+)"', review_html).group(1)


def test_an_import_that_no_longer_matches_its_review_is_refused(admin, app):
    with app.app_context():
        make_quiz("alpha")
    response = upload(
        admin, bank_yaml("alpha").replace("Which port", "Which TCP port").encode()
    )
    review = admin.get(response.headers["Location"]).get_data(as_text=True)
    upload_id = int(response.headers["Location"].rsplit("/", 1)[1])
    # Meanwhile someone archives a question in the admin pages.
    admin.post("/admin/questions/alpha-tf/status", data={"action": "archive"})
    refused = admin.post(
        f"/admin/imports/{upload_id}/apply",
        data={"digest": digest(review)},
        follow_redirects=True,
    )
    assert "review it again" in refused.get_data(as_text=True)
    with app.app_context():
        question = db.session.scalar(
            sa.select(Question).where(Question.slug == "alpha-single")
        )
        assert question.revision == 1


def test_a_stale_upload_shows_its_problems_and_can_be_discarded(admin, app):
    response = upload(admin, bank_yaml("gamma").encode())
    upload_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with app.app_context():
        make_quiz("alpha")
        db.session.scalar(
            sa.select(Question).where(Question.slug == "alpha-tf")
        ).slug = "gamma-tf"
        db.session.commit()
    stale = admin.get(f"/admin/imports/{upload_id}")
    assert stale.status_code == 409
    assert "question id already used in quiz alpha" in stale.get_data(as_text=True)
    assert (
        admin.post(
            f"/admin/imports/{upload_id}/apply", data={"digest": "x"}
        ).status_code
        == 409
    )
    admin.post(f"/admin/imports/{upload_id}/discard")
    assert count(app, BankUpload) == 0


def test_upload_of_a_changed_bank_shows_the_summary(admin, app):
    with app.app_context():
        make_quiz("alpha")
    changed = bank_yaml("alpha").replace("Which port", "Which TCP port")
    response = upload(admin, changed.encode())
    html = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert re.search(r"<dt>Updated</dt><dd>1</dd>", html)
    assert re.search(r"<dt>Unchanged</dt><dd>2</dd>", html)
    upload_id = int(response.headers["Location"].rsplit("/", 1)[1])
    admin.post(f"/admin/imports/{upload_id}/discard")
    assert count(app, BankUpload) == 0 and count(app, Question) == 3
    assert audit_actions(app) == ["bank.upload", "bank.discard"]


def test_upload_cannot_take_questions_from_another_quiz(admin, app):
    with app.app_context():
        make_quiz("alpha")
    thief = bank_yaml("beta").replace("beta-single", "alpha-single")
    response = upload(admin, thief.encode())
    assert response.status_code == 422
    assert "question id already used in quiz alpha" in response.get_data(as_text=True)


def test_download_then_upload_gives_the_same_bank(admin, app):
    with app.app_context():
        make_quiz("alpha")
    download = admin.get("/admin/quizzes/alpha/export")
    assert download.headers["Content-Disposition"].startswith(
        'attachment; filename="alpha-'
    )
    response = upload(admin, download.data, "alpha.yaml")
    html = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert re.search(r"<dt>Unchanged</dt><dd>3</dd>", html)
    assert re.search(r"<dt>Updated</dt><dd>0</dd>", html)


def test_users_search_role_disable_and_password(admin, app):
    with app.app_context():
        for number in range(30):
            make_account(f"user{number:02}@example.org", role="player")
        target = make_account("target@example.org", role="player", name="Target")
        target_id = target.id
    page1 = admin.get("/admin/users").get_data(as_text=True)
    assert "Page 1 of 2" in page1
    found = admin.get("/admin/users?q=TARGET").get_data(as_text=True)
    assert "target@example.org" in found and "user01@" not in found
    admin.post(f"/admin/users/{target_id}/role", data={"role": "trainer"})
    assert "trainer@" not in admin.get("/admin/users?role=trainer").get_data(
        as_text=True
    )
    assert "target@example.org" in admin.get("/admin/users?role=trainer").get_data(
        as_text=True
    )

    victim = app.test_client()
    victim.post(
        "/auth/login", data={"email": "target@example.org", "password": PASSWORD}
    )
    admin.post(f"/admin/users/{target_id}/status", data={"action": "disable"})
    assert victim.get("/auth/account").status_code == 302  # signed out
    assert "This account is disabled" in victim.post(
        "/auth/login", data={"email": "target@example.org", "password": PASSWORD}
    ).get_data(as_text=True)
    admin.post(f"/admin/users/{target_id}/status", data={"action": "enable"})
    new = "freshly set passphrase"
    weak = admin.post(
        f"/admin/users/{target_id}/password",
        data={"password": "password", "confirm": "password"},
    )
    assert weak.status_code == 422
    admin.post(
        f"/admin/users/{target_id}/password", data={"password": new, "confirm": new}
    )
    assert (
        victim.post(
            "/auth/login", data={"email": "target@example.org", "password": new}
        ).status_code
        == 302
    )
    assert audit_actions(app) == [
        "user.role",
        "user.disable",
        "user.enable",
        "user.password",
    ]


def test_the_last_admin_cannot_be_demoted_or_disabled(admin, app):
    with app.app_context():
        admin_id = db.session.scalar(sa.select(User.id).where(User.role == "admin"))
    response = admin.post(
        f"/admin/users/{admin_id}/role", data={"role": "player"}, follow_redirects=True
    )
    assert "only active administrator" in response.get_data(as_text=True)
    admin.post(f"/admin/users/{admin_id}/status", data={"action": "disable"})
    with app.app_context():
        user = db.session.get(User, admin_id)
        assert user.role == "admin" and not user.is_disabled


def test_audit_log_lists_and_filters(admin, app):
    admin.post("/admin/quizzes/new", data=QUIZ_FORM)
    admin.post(
        "/admin/quizzes/new", data={**QUIZ_FORM, "slug": "second", "title": "Second"}
    )
    html = admin.get("/admin/audit").get_data(as_text=True)
    assert html.count("quiz.create") >= 2 and "admin@example.org" in html
    assert "Created quiz Second" in admin.get(
        "/admin/audit?action=quiz.create"
    ).get_data(as_text=True)
    assert "No events match" in admin.get("/admin/audit?actor=nobody").get_data(
        as_text=True
    )
    assert "No events match" in admin.get("/admin/audit?target=user").get_data(
        as_text=True
    )


def test_duplicate_quiz_id_is_refused_next_to_the_field(admin, app):
    admin.post("/admin/quizzes/new", data=QUIZ_FORM)
    again = admin.post("/admin/quizzes/new", data=QUIZ_FORM)
    assert again.status_code == 422
    assert "A quiz with this id exists already." in again.get_data(as_text=True)


def test_nine_choices_are_reported_not_dropped(admin, app):
    with app.app_context():
        make_quiz("alpha")
    rows = {f"choices-{i}-text": f"Option {i}" for i in range(9)}
    data = question_form(
        **rows, **{"choices-8-correct": "y", "choices-0-correct": None}
    )
    response = admin.post("/admin/quizzes/alpha/questions/new", data=data)
    assert response.status_code == 422
    assert "needs 2 to 8 choices, has 9" in response.get_data(as_text=True)


def test_a_bad_choice_order_is_shown_on_its_row(admin, app):
    with app.app_context():
        make_quiz("alpha")
    response = admin.post(
        "/admin/quizzes/alpha/questions/new",
        data=question_form(**{"choices-1-order": "second"}),
    )
    assert response.status_code == 422
    assert "Choice 2: Not a valid integer value." in response.get_data(as_text=True)


def test_a_repeated_submit_of_a_new_question_adds_it_once(admin, app):
    with app.app_context():
        make_quiz("alpha")
    form_html = admin.get("/admin/quizzes/alpha/questions/new").get_data(as_text=True)
    nonce = re.search(
        r'name="nonce" type="hidden" value="([0-9a-f]+)"', form_html
    ).group(1)
    first = admin.post(
        "/admin/quizzes/alpha/questions/new", data=question_form(nonce=nonce)
    )
    second = admin.post(
        "/admin/quizzes/alpha/questions/new", data=question_form(nonce=nonce)
    )
    assert first.status_code == 302 and second.status_code == 422
    assert "exists already" in second.get_data(as_text=True)
    assert count(app, Question) == 4


def test_export_after_archiving_still_loads_back(admin, app):
    with app.app_context():
        make_quiz("alpha")
    admin.post("/admin/questions/alpha-tf/status", data={"action": "archive"})
    download = admin.get("/admin/quizzes/alpha/export")
    assert b"questions_per_attempt" not in download.data  # 3 per attempt, 2 live: all
    response = upload(admin, download.data, "alpha.yaml")
    assert response.status_code == 302


def test_tag_filter_matches_exactly_including_non_ascii(admin, app):
    with app.app_context():
        make_quiz("alpha")
    new = "/admin/quizzes/alpha/questions/new"
    admin.post(new, data=question_form(slug="alpha-secu", tags="sécurité, a_b"))
    admin.post(new, data=question_form(slug="alpha-other", tags="axb"))

    def listed(query):
        html = admin.get("/admin/questions" + query).get_data(as_text=True)
        return re.findall(r"<code class=\"meta\">([\w-]+)</code>", html)

    assert listed("?tag=sécurité") == ["alpha-secu"]
    assert listed("?tag=a_b") == ["alpha-secu"]


@pytest.mark.parametrize(
    "query",
    [
        "?page=99999999999999999999",
        "?page=-5",
        "?_method=POST",
        "?_anchor=x&_external=1&page=2",
    ],
)
def test_list_pages_take_any_page_argument(admin, app, query):
    with app.app_context():
        for number in range(30):
            make_account(f"user{number:02}@example.org", role="player")
    response = admin.get("/admin/users" + query)
    assert response.status_code == 200
    assert "_external" not in response.get_data(as_text=True)


def test_audit_log_filters_by_day(admin, app):
    admin.post("/admin/quizzes/new", data=QUIZ_FORM)
    from datetime import date, timedelta

    today = date.today()
    assert "Created quiz" in admin.get(
        f"/admin/audit?since={today}&until={today}"
    ).get_data(as_text=True)
    tomorrow = today + timedelta(days=1)
    assert "No events match" in admin.get(f"/admin/audit?since={tomorrow}").get_data(
        as_text=True
    )
    assert admin.get("/admin/audit?since=not-a-date").status_code == 200

"""Hostile text renders inert everywhere it appears: play, admin and trainer pages."""

import csv
import io
import re

import pytest
import sqlalchemy as sa

from quiz import attempts, cohorts
from quiz.extensions import db
from quiz.models import Question, User
from tests.factories import PASSWORD, bank_yaml, load_bank, make_account

PAYLOADS = [
    "<script>alert('xss')</script>",
    '<img src=x onerror="alert(1)">',
    "javascript:alert(1)",
    "{{ 7*7 }}",
    '"><svg onload=alert(1)>',
]


def hostile_bank(payload: str) -> str:
    quoted = payload.replace("'", "''")
    text = bank_yaml("alpha")
    text = text.replace("Which port does HTTPS use by default?", f"'Q {quoted}'")
    text = text.replace('      - text: "8080"', f"      - text: 'C {quoted}'")
    return text.replace(
        "    explanation: HTTPS listens on 443 by default; 80 is plain HTTP.",
        f"    explanation: 'E {quoted}'",
    )


def inert(html: str, payload: str) -> None:
    assert (
        payload not in html
        or payload == "javascript:alert(1)"
        or payload == "{{ 7*7 }}"
    )
    assert "<script>alert" not in html and 'onerror="alert' not in html
    assert "<svg onload" not in html
    assert 'href="javascript:' not in html
    if payload == "{{ 7*7 }}":
        assert "Q 49" not in html and "E 49" not in html


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_render_inert_on_every_page(app, payload):
    with app.app_context():
        quiz = load_bank(hostile_bank(payload))
        admin = make_account("admin@example.org", role="admin")
        trainer = make_account("tia@example.org", role="trainer")
        learner = make_account(
            "lee@example.org", role="player", name=f"N {payload}"[:40]
        )
        cohort = cohorts.create(trainer, f"K {payload}"[:80])
        cohorts.join(learner, cohort.join_code)
        cohorts.assign(trainer, cohort, quiz, None)
        attempt = attempts.start(learner, quiz)
        for position in (1, 2, 3):
            item = attempts.review_item(attempt, position)
            attempts.answer(attempt, position, [item.choices[-1].id])
        db.session.commit()
        ids = {
            "attempt": attempt.id,
            "cohort": cohort.id,
            "learner": learner.id,
            "admin": admin.id,
        }
    pages = {
        "lee@example.org": [
            "/",
            "/quizzes/alpha",
            "/quizzes/alpha/leaderboard",
            "/leaderboard",
            f"/attempts/{ids['attempt']}/results",
            f"/attempts/{ids['attempt']}/questions/1",
            "/cohorts",
            "/auth/account",
            f"/cohorts/{ids['cohort']}/leaderboard/alpha",
        ],
        "tia@example.org": [
            "/trainer/",
            f"/trainer/cohorts/{ids['cohort']}",
            f"/trainer/cohorts/{ids['cohort']}/results?quiz=alpha",
            f"/trainer/cohorts/{ids['cohort']}/members/{ids['learner']}",
            f"/trainer/cohorts/{ids['cohort']}/attempts/{ids['attempt']}",
            f"/trainer/statistics?quiz=alpha&cohort={ids['cohort']}",
        ],
        "admin@example.org": [
            "/admin/questions",
            "/admin/quizzes/alpha",
            "/admin/questions/alpha-single",
            "/admin/questions/alpha-single/preview",
            "/admin/users",
            "/admin/audit",
        ],
    }
    for email, urls in pages.items():
        client = app.test_client()
        client.post("/auth/login", data={"email": email, "password": PASSWORD})
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, url
            inert(response.get_data(as_text=True), payload)


def test_payloads_are_escaped_not_dropped(app):
    payload = PAYLOADS[0]
    with app.app_context():
        load_bank(hostile_bank(payload))
    html = app.test_client().get("/quizzes/alpha").get_data(as_text=True)
    client = app.test_client()
    client.post("/guest", data={"display_name": "<b>bold</b>"})
    client.post("/quizzes/alpha/start")
    html = client.get("/attempts/1/questions/1").get_data(as_text=True)
    assert "Q &lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html


def test_exports_carry_payloads_as_text(app):
    with app.app_context():
        quiz = load_bank(hostile_bank('=HYPERLINK("http://evil")'))
        trainer = make_account("tia@example.org", role="trainer")
        learner = make_account("lee@example.org", role="player", name="=1+1")
        cohort = cohorts.create(trainer, "@cohort")
        cohorts.join(learner, cohort.join_code)
        cohorts.assign(trainer, cohort, quiz, None)
        attempt = attempts.start(learner, quiz)
        item = attempts.review_item(attempt, 1)
        attempts.answer(attempt, 1, [item.choices[-1].id])
        db.session.commit()
        cohort_id = cohort.id
    client = app.test_client()
    client.post("/auth/login", data={"email": "tia@example.org", "password": PASSWORD})
    rows = list(
        csv.reader(
            io.StringIO(
                client.get(f"/trainer/export/attempts.csv?cohort={cohort_id}").get_data(
                    as_text=True
                )
            )
        )
    )
    assert rows[1][1] == "'=1+1" and rows[1][3] == "'@cohort"
    answers = list(
        csv.reader(
            io.StringIO(
                client.get(
                    f"/trainer/export/responses.csv?cohort={cohort_id}"
                ).get_data(as_text=True)
            )
        )
    )
    assert answers[1][5].startswith("C ")  # the chosen hostile choice, as text
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Question)) == 3
        assert (
            db.session.scalar(
                sa.select(User.display_name).where(User.email == "lee@example.org")
            )
            == "=1+1"
        )
    assert re.search(r"HYPERLINK", answers[1][5])

"""The play flow through the test client, as a visitor uses it."""

import re

import pytest
import sqlalchemy as sa

from quiz import attempts
from quiz.extensions import db
from quiz.models import Attempt, Question, Response, User
from tests.factories import make_player, make_quiz


@pytest.fixture
def quiz(app):
    with app.app_context():
        return make_quiz("alpha").slug


def become_guest(client, name="Guest Player"):
    response = client.post("/guest", data={"display_name": name})
    assert response.status_code == 302
    return response


def start(client, slug="alpha") -> int:
    response = client.post(f"/quizzes/{slug}/start")
    assert response.status_code == 302
    return int(re.search(r"/attempts/(\d+)", response.headers["Location"]).group(1))


def choice_ids(html: str) -> list[int]:
    return [int(v) for v in re.findall(r'name="choice" value="(\d+)"', html)]


def correct_ids(app, attempt_id, position):
    with app.app_context():
        attempt = db.session.get(Attempt, attempt_id)
        return [
            c.id
            for c in attempts.review_item(attempt, position).choices
            if c.is_correct
        ]


def answer_first_and_finish(client, app, attempt_id):
    """Answer question 1 right, then finish: 1 of 6 points."""
    client.post(
        f"/attempts/{attempt_id}/questions/1",
        data={"choice": correct_ids(app, attempt_id, 1)},
    )
    client.post(f"/attempts/{attempt_id}/finish")


def test_catalogue_lists_published_quizzes(client, quiz):
    html = client.get("/").get_data(as_text=True)
    assert "Test bank alpha" in html
    assert "Pass mark" in html and "50%" in html


def test_catalogue_shows_an_empty_state(client):
    assert "No quizzes are published yet" in client.get("/").get_data(as_text=True)


def test_visitor_is_asked_for_a_display_name_before_playing(client, quiz):
    html = client.get("/quizzes/alpha").get_data(as_text=True)
    assert "Choose a display name to play" in html
    response = client.post(
        "/quizzes/alpha/start", headers={"Referer": "http://localhost/quizzes/alpha"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login?next=/quizzes/alpha"
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "play as a guest" in html and "/guest?next=/quizzes/alpha" in html


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Choose a display name."),
        ("x", "Use 2 to 40 characters."),
        ("y" * 41, "Use 2 to 40 characters."),
        ("bad\u0000name", "letters, digits, spaces and punctuation only"),
        ("right\u202eleft", "letters, digits, spaces and punctuation only"),
    ],
)
def test_display_name_is_validated(client, app, name, message):
    response = client.post("/guest", data={"display_name": name})
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_display_name_is_escaped_and_whitespace_collapsed(client, app, quiz):
    become_guest(client, "  <script>alert(1)</script>   Eve ")
    html = client.get("/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Eve" in html


def test_guest_is_sent_back_to_a_safe_next_page_only(client, quiz):
    response = client.post(
        "/guest", data={"display_name": "Al", "next": "/quizzes/alpha"}
    )
    assert response.headers["Location"] == "/quizzes/alpha"
    other = client.application.test_client()
    response = other.post(
        "/guest", data={"display_name": "Al", "next": "//evil.example"}
    )
    assert response.headers["Location"] == "/"


def test_whole_quiz_flow(client, app, quiz):
    become_guest(client)
    attempt_id = start(client)
    page = client.get(f"/attempts/{attempt_id}", follow_redirects=True)
    html = page.get_data(as_text=True)
    assert "Question 1 of 3" in html
    assert '<progress id="progress" max="3" value="0">' in html
    assert 'type="radio"' in html

    # Answer 1 right; the feedback shows the verdict, the explanation and the source.
    ids = correct_ids(app, attempt_id, 1)
    response = client.post(f"/attempts/{attempt_id}/questions/1", data={"choice": ids})
    assert response.status_code == 302
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Correct" in html and "HTTPS listens on 443" in html
    assert "RFC 2818" in html and "Next question" in html

    # Question 2 is "select all that apply" with checkboxes; answer it half right.
    html = client.get(f"/attempts/{attempt_id}/questions/2").get_data(as_text=True)
    assert "Select all that apply." in html and 'type="checkbox"' in html
    half = correct_ids(app, attempt_id, 2)[:1]
    client.post(f"/attempts/{attempt_id}/questions/2", data={"choice": half})
    html = client.get(f"/attempts/{attempt_id}/questions/2").get_data(as_text=True)
    assert "Partly right" in html and "1.5 of 3 points" in html

    # The last answer finishes the attempt and leads to the results.
    page3 = client.get(f"/attempts/{attempt_id}/questions/3").get_data(as_text=True)
    right3 = correct_ids(app, attempt_id, 3)
    wrong = [i for i in choice_ids(page3) if i not in right3]
    client.post(f"/attempts/{attempt_id}/questions/3", data={"choice": wrong})
    html = client.get(f"/attempts/{attempt_id}/questions/3").get_data(as_text=True)
    assert "Not quite" in html and "See your results" in html
    html = client.get(f"/attempts/{attempt_id}/results").get_data(as_text=True)
    assert "2.5 / 6" in html and "42%" in html and "Not passed this time" in html
    assert "Your rank" in html and "Try again" in html
    assert html.count('class="review-item"') == 3

    # The leaderboard shows the player's entry.
    board = client.get("/quizzes/alpha/leaderboard").get_data(as_text=True)
    assert "Guest Player" in board and "2.5 / 6" in board


def test_correct_answers_never_reach_the_browser_before_answering(client, app, quiz):
    become_guest(client)
    attempt_id = start(client)
    for position in (1, 2, 3):
        html = client.get(f"/attempts/{attempt_id}/questions/{position}").get_data(
            as_text=True
        )
        assert "is-correct" not in html and "Correct answer" not in html
        with app.app_context():
            attempt = db.session.get(Attempt, attempt_id)
            item = attempts.review_item(attempt, position)
            assert item.revision.explanation not in html
            # Choice values are opaque ids in the attempt's shuffled order, no flags.
            assert choice_ids(html) == [c.id for c in item.choices]
        assert "data-correct" not in html


def test_resume_goes_to_the_first_unanswered_question(client, app, quiz):
    become_guest(client)
    attempt_id = start(client)
    client.post(
        f"/attempts/{attempt_id}/questions/1",
        data={"choice": correct_ids(app, attempt_id, 1)},
    )
    assert start(client) == attempt_id  # starting again resumes
    response = client.get(f"/attempts/{attempt_id}")
    assert response.headers["Location"].endswith(f"/attempts/{attempt_id}/questions/2")
    html = client.get("/quizzes/alpha").get_data(as_text=True)
    assert "Resume your attempt" in html


def test_double_submit_shows_the_recorded_result(client, app, quiz):
    become_guest(client)
    attempt_id = start(client)
    ids = choice_ids(
        client.get(f"/attempts/{attempt_id}/questions/1").get_data(as_text=True)
    )
    wrong = [i for i in ids if i not in correct_ids(app, attempt_id, 1)][:1]
    client.post(f"/attempts/{attempt_id}/questions/1", data={"choice": wrong})
    again = client.post(
        f"/attempts/{attempt_id}/questions/1",
        data={"choice": correct_ids(app, attempt_id, 1)},
    )
    assert again.status_code == 302
    html = client.get(again.headers["Location"]).get_data(as_text=True)
    assert "Not quite" in html
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Response)) == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Choose an answer before submitting."),
        ({"choice": "abc"}, "That choice is not one of this question"),
        ({"choice": "999999"}, "That choice is not one of this question"),
        ({"choice": ["1", "x" * 5000]}, "That choice is not one of this question"),
    ],
)
def test_bad_answer_re_renders_the_question_with_a_message(client, quiz, data, message):
    become_guest(client)
    attempt_id = start(client)
    response = client.post(f"/attempts/{attempt_id}/questions/1", data=data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html and "Question 1 of 3" in html


def test_two_choices_for_a_single_question_are_refused(client, app, quiz):
    become_guest(client)
    attempt_id = start(client)
    ids = choice_ids(
        client.get(f"/attempts/{attempt_id}/questions/1").get_data(as_text=True)
    )
    response = client.post(
        f"/attempts/{attempt_id}/questions/1", data={"choice": ids[:2]}
    )
    assert response.status_code == 422
    assert "Choose exactly one answer." in response.get_data(as_text=True)


def test_question_outside_the_attempt_is_404(client, quiz):
    become_guest(client)
    attempt_id = start(client)
    assert client.get(f"/attempts/{attempt_id}/questions/9").status_code == 404
    response = client.post(f"/attempts/{attempt_id}/questions/9", data={"choice": "1"})
    assert response.status_code == 404
    assert "There is nothing at this address" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    [
        "/attempts/{big}/questions/1",
        "/attempts/{attempt}/questions/{big}",
        "/attempts/{big}/finish",
    ],
)
def test_a_number_beyond_any_id_is_404_for_a_form_too(client, app, quiz, path):
    """The GET rule at the same address refuses the number as well: nothing there
    takes any method, so no 405 says GET would do."""
    become_guest(client)
    attempt_id = start(client)
    url = path.format(attempt=attempt_id, big=2**31)
    response = client.post(url, data={"choice": "1"})
    assert response.status_code == 404 and "Allow" not in response.headers
    assert "There is nothing at this address" in response.get_data(as_text=True)
    for method in ("GET", "HEAD", "OPTIONS", "DELETE"):
        assert client.open(url, method=method).status_code == 404, method
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Response)) == 0
        assert db.session.get(Attempt, attempt_id).finished_at is None


def test_a_doubled_slash_is_judged_at_the_address_it_redirects_to(client, quiz):
    """``/attempts//N/finish`` redirects a POST to ``/attempts/N/finish``: with an N
    beyond any id nothing is there, so a GET gets 404, not a 405 offering POST."""
    become_guest(client)
    assert client.post(f"/attempts//{2**31}/finish").status_code == 308
    assert client.get(f"/attempts//{2**31}/finish").status_code == 404
    attempt_id = start(client)
    response = client.get(f"/attempts//{attempt_id}/finish")
    assert response.status_code == 405 and "POST" in response.headers["Allow"]


def test_a_method_the_address_does_not_take_is_still_405(client, quiz):
    become_guest(client)
    attempt_id = start(client)
    response = client.put(f"/attempts/{attempt_id}/questions/1")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}
    response = client.get(f"/attempts/{attempt_id}/finish")
    assert response.status_code == 405 and "POST" in response.headers["Allow"]
    response = client.delete(f"/attempts/{attempt_id}/questions/{2**31 - 1}")
    assert response.status_code == 405  # the largest id there can be


def test_another_players_attempt_is_404_for_every_page(client, app, quiz):
    become_guest(client, "Owner")
    attempt_id = start(client)
    intruder = app.test_client()
    become_guest(intruder, "Intruder")
    for url in (
        f"/attempts/{attempt_id}",
        f"/attempts/{attempt_id}/questions/1",
        f"/attempts/{attempt_id}/results",
    ):
        assert intruder.get(url).status_code == 404
    response = intruder.post(
        f"/attempts/{attempt_id}/questions/1", data={"choice": "1"}
    )
    assert response.status_code == 404
    assert intruder.post(f"/attempts/{attempt_id}/finish").status_code == 404
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Response)) == 0
        assert db.session.get(Attempt, attempt_id).finished_at is None


def test_anonymous_visitor_cannot_open_attempts(client, quiz):
    response = client.get("/attempts/1/results")
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login?next=/attempts/1/results"


def test_answer_to_a_finished_attempt_is_refused_with_a_message(client, app, quiz):
    become_guest(client)
    attempt_id = start(client)
    client.post(f"/attempts/{attempt_id}/finish")
    response = client.post(
        f"/attempts/{attempt_id}/questions/1",
        data={"choice": correct_ids(app, attempt_id, 1)},
    )
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "This attempt is finished" in html and "See your results" in html
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Response)) == 0


def test_answer_after_the_deadline_is_refused_and_the_attempt_finished(client, app):
    from datetime import timedelta

    with app.app_context():
        make_quiz("timed", minutes=5)
    become_guest(client)
    attempt_id = start(client, "timed")
    html = client.get(f"/attempts/{attempt_id}/questions/1").get_data(as_text=True)
    assert "Time left: <span" in html and 'data-countdown="' in html
    with app.app_context():
        attempt = db.session.get(Attempt, attempt_id)
        attempt.deadline = attempt.started_at - timedelta(seconds=1)
        attempt.started_at -= timedelta(minutes=6)
        db.session.commit()
    html = client.get(f"/attempts/{attempt_id}/questions/1").get_data(as_text=True)
    assert "Time is up" in html and "Submit answer" not in html
    response = client.post(
        f"/attempts/{attempt_id}/questions/1",
        data={"choice": correct_ids(app, attempt_id, 1)},
    )
    assert response.status_code == 409
    assert "Time is up: the answer was not recorded" in response.get_data(as_text=True)
    html = client.get(f"/attempts/{attempt_id}/results").get_data(as_text=True)
    assert "0 / 6" in html
    with app.app_context():
        assert db.session.get(Attempt, attempt_id).finished_at is not None


def test_finish_early_scores_unanswered_questions_as_zero(client, app, quiz):
    become_guest(client)
    attempt_id = start(client)
    client.post(
        f"/attempts/{attempt_id}/questions/1",
        data={"choice": correct_ids(app, attempt_id, 1)},
    )
    response = client.post(f"/attempts/{attempt_id}/finish")
    assert response.headers["Location"].endswith(f"/attempts/{attempt_id}/results")
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "1 / 6" in html and "Not answered" in html


def test_results_of_an_open_attempt_redirect_to_the_question(client, quiz):
    become_guest(client)
    attempt_id = start(client)
    response = client.get(f"/attempts/{attempt_id}/results")
    assert response.status_code == 302


def test_leaderboards_show_my_rank_and_periods(client, app, quiz):
    with app.app_context():
        from datetime import UTC, datetime

        from quiz import leaderboard
        from quiz.models import Quiz

        quiz_row = db.session.scalar(sa.select(Quiz))
        for i in range(25):
            player = make_player(f"Player {i:02}")
            db.session.add(
                attempt := Attempt(
                    user_id=player.id,
                    quiz_id=quiz_row.id,
                    pass_mark=50,
                    score=6 - i * 0.2,
                    max_score=6,
                    finished_at=datetime.now(UTC),
                    duration_ms=1000,
                    passed=True,
                )
            )
            db.session.flush()
            leaderboard.record_finished(attempt)
        db.session.commit()
    become_guest(client, "Late Comer")
    attempt_id = start(client)
    client.post(f"/attempts/{attempt_id}/finish")
    html = client.get("/quizzes/alpha/leaderboard").get_data(as_text=True)
    assert "Player 00" in html and "Player 19" in html and "Player 20" not in html
    assert "Your rank: <strong>26</strong> of 26" in html
    assert "Page 1 of 2" in html
    html = client.get("/quizzes/alpha/leaderboard?page=2").get_data(as_text=True)
    assert "Late Comer" in html and 'class="is-me"' in html
    html = client.get("/leaderboard?period=week").get_data(as_text=True)
    assert "Player 00" in html and "Last 7 days" in html
    assert client.get("/leaderboard?period=nonsense&page=-3").status_code == 200
    assert client.get("/quizzes/nope/leaderboard").status_code == 404


def test_unpublished_quiz_is_hidden(client, app, quiz):
    with app.app_context():
        from quiz.models import Quiz

        db.session.scalar(sa.select(Quiz)).is_published = False
        db.session.commit()
    assert "Test bank alpha" not in client.get("/").get_data(as_text=True)
    assert client.get("/quizzes/alpha").status_code == 404
    become_guest(client)
    assert client.post("/quizzes/alpha/start").status_code == 404


def test_catalogue_shows_my_best_score(client, app, quiz):
    become_guest(client)
    attempt_id = start(client)
    answer_first_and_finish(client, app, attempt_id)
    html = client.get("/").get_data(as_text=True)
    assert "Your best" in html and "1 / 6" in html


def test_player_helper_creates_guests(ctx):
    player = make_player("Zed")
    assert player.is_guest and player.role == "player"


def test_guest_page_while_playing_creates_no_second_player(client, app, quiz):
    become_guest(client, "First")
    response = client.post("/guest", data={"display_name": "Second"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def test_guest_session_outlives_the_browser_session(client, quiz):
    become_guest(client)
    cookie = client.get_cookie("session")
    assert cookie.expires is not None


def test_guests_are_rate_limited_per_address(client, app):
    app.config["RATELIMIT_GUESTS"] = "3 per hour"
    for number in range(3):
        fresh = app.test_client()
        assert (
            fresh.post("/guest", data={"display_name": f"G{number}"}).status_code == 302
        )
    assert (
        app.test_client().post("/guest", data={"display_name": "G9"}).status_code == 429
    )


def test_catalogue_hides_quizzes_without_questions(client, app, quiz):
    with app.app_context():
        for question in db.session.scalars(sa.select(Question)):
            question.is_archived = True
        db.session.commit()
    assert "Test bank alpha" not in client.get("/").get_data(as_text=True)


def test_expired_attempt_offers_play_not_resume(client, app):
    from datetime import timedelta

    with app.app_context():
        make_quiz("timed", minutes=1)
    become_guest(client)
    attempt_id = start(client, "timed")
    with app.app_context():
        attempt = db.session.get(Attempt, attempt_id)
        attempt.deadline = attempt.started_at - timedelta(seconds=1)
        db.session.commit()
    html = client.get("/").get_data(as_text=True)
    assert ">Play<" in html and ">Resume<" not in html


def test_any_answer_to_a_finished_attempt_gets_409(client, quiz):
    become_guest(client)
    attempt_id = start(client)
    client.post(f"/attempts/{attempt_id}/finish")
    response = client.post(f"/attempts/{attempt_id}/questions/1", data={})
    assert response.status_code == 409


def test_finishing_early_does_not_reveal_unanswered_answers(client, app, quiz):
    become_guest(client)
    attempt_id = start(client)
    answer_first_and_finish(client, app, attempt_id)
    html = client.get(f"/attempts/{attempt_id}/results").get_data(as_text=True)
    assert html.count("Correct answer") == 1  # only the answered question's
    assert "HTTPS listens on 443" in html  # its explanation
    assert "Something you have counts" not in html  # unanswered: hidden
    assert "answer stays hidden" in html

"""The catalogue's cached snapshot follows every content change at once, and play
pages fetched with GET cannot write."""

import pytest
import sqlalchemy as sa

from quiz import authoring
from quiz.extensions import db
from quiz.models import ContentVersion, Question, User
from quiz.play import ReadOnlyPageWrote
from tests.factories import bank_yaml, load_bank, make_account, make_quiz


def _version() -> int:
    return db.session.scalar(sa.select(ContentVersion.version))


def _page(client) -> str:
    return client.get("/").get_data(as_text=True)


def test_publishing_editing_and_archiving_show_on_the_next_view(app, client):
    with app.app_context():
        quiz = make_quiz("cache-quiz")
        admin = make_account()
        quiz_id = quiz.id
    assert "cache-quiz" in _page(client)  # the snapshot is now cached
    with app.app_context():
        quiz = db.session.get(type(quiz), quiz_id)
        admin = db.session.merge(admin)
        authoring.update_quiz(admin, quiz, title="A renamed quiz")
        db.session.commit()
    assert "A renamed quiz" in _page(client)
    with app.app_context():
        quiz = db.session.get(type(quiz), quiz_id)
        authoring.set_published(db.session.merge(admin), quiz, False)
        db.session.commit()
    assert "cache-quiz" not in _page(client)
    with app.app_context():
        quiz = db.session.get(type(quiz), quiz_id)
        authoring.set_published(db.session.merge(admin), quiz, True)
        db.session.commit()
    assert "cache-quiz" in _page(client)


def test_archiving_a_question_changes_the_count(app, client):
    with app.app_context():
        make_quiz("count-quiz", per_attempt=2)
        admin = make_account()
    assert "2 of 3" in _page(client)
    with app.app_context():
        question = db.session.scalars(sa.select(Question)).first()
        authoring.archive_question(db.session.merge(admin), question)
        db.session.commit()
    page = _page(client)
    assert "2 of 3" not in page
    assert "<dd>2</dd>" in page


def test_a_question_moving_between_quizzes_raises_the_version(ctx):
    first = load_bank(bank_yaml("first-bank"))
    second = load_bank(bank_yaml("second-bank").replace("id: ", "id: x-", 1))
    before = _version()
    question = db.session.scalars(
        sa.select(Question).where(Question.quiz_id == first.id)
    ).first()
    question.quiz_id = second.id
    db.session.commit()
    assert _version() == before + 1


def test_play_and_other_writes_leave_the_version_alone(ctx):
    make_quiz()
    before = _version()
    from tests.factories import make_player

    make_player("Nobody")
    assert _version() == before


def test_a_get_page_that_writes_is_refused(app, client, monkeypatch):
    """In autocommit (PostgreSQL) a write would stick at once: every play GET is
    refused any write, on every database."""
    from quiz import catalogue, players

    with app.app_context():
        make_quiz("guarded")

    def writing_cards(player):
        players.create_guest("written by a GET")
        return []

    monkeypatch.setattr(catalogue, "cards", writing_cards)
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(ReadOnlyPageWrote):
        client.get("/")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def _card(page: str, slug: str) -> str:
    """The HTML of one quiz's card in the catalogue."""
    for card in page.split('<li class="card">')[1:]:
        if f'href="/quizzes/{slug}"' in card:
            return card.split("</li>")[0]
    raise AssertionError(f"no card for {slug}")


def test_each_player_sees_their_own_card_and_cards_are_shared(app, renders):
    from tests.test_board_cache import play_as_guest

    with app.app_context():
        make_quiz("alpha")
    ann = play_as_guest(app, "Ann Able", right=3)  # best 6 / 6
    bob = app.test_client()
    bob.post("/guest", data={"display_name": "Bob Baker"})
    bob.post("/quizzes/alpha/start")  # open, nothing finished
    cat = app.test_client()
    cat.post("/guest", data={"display_name": "Cat Cole"})

    renders.clear()
    for _ in range(2):
        ann_card = _card(_page(ann), "alpha")
        bob_card = _card(_page(bob), "alpha")
        cat_card = _card(_page(cat), "alpha")
        assert "Your best" in ann_card and ">6 / 6<" in ann_card
        assert "Your best" not in bob_card and "Resume" in bob_card
        assert "Your best" not in cat_card and "Play" in cat_card
        assert _card(_page(app.test_client()), "alpha") == cat_card
    # Three kinds of card, each rendered once: a fourth player like Cat reuses hers,
    # and the whole grid of cards too.
    assert renders.count("play/_card.html") == 3
    assert renders.count("play/_card_grid.html") == 3

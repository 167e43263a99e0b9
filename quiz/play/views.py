"""Play: the catalogue, guests, attempts question by question, results, leaderboards."""

from __future__ import annotations

import sqlalchemy as sa
from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user
from markupsafe import Markup

from .. import attempts, catalogue, changes, leaderboard, players
from ..errors import render_error
from ..extensions import db, limiter
from ..fragments import fragment, piece
from ..layout import kept_page
from ..models import Quiz
from ..reads import HotRead, core_transaction
from ..security import leaves_player_unchanged, safe_next_url
from . import bp
from .forms import AnswerForm, FinishForm, GuestForm, StartForm, posted_choices


@bp.get("/")
def index():
    player = current_user if current_user.is_authenticated else None
    cards = catalogue.cards(player)
    return kept_page("play/catalogue.html", _grid_key(cards), cards=cards)


@bp.route("/guest", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_GUESTS"], methods=["POST"])
def guest():
    if current_user.is_authenticated:
        flash(f"You are already playing as {current_user.display_name}.", "info")
        return redirect(
            safe_next_url(request.args.get("next")) or url_for("play.index")
        )
    form = GuestForm(next=request.args.get("next"))
    if form.validate_on_submit():
        player = players.create_guest(form.display_name.data)
        db.session.commit()
        session.permanent = True  # a guest's only way back to their scores
        login_user(player)
        flash(f"Welcome, {player.display_name}. Good luck!", "success")
        return redirect(safe_next_url(form.next.data) or url_for("play.index"))
    return render_template("play/guest.html", form=form)


@bp.get("/quizzes/<slug>")
def quiz(slug: str):
    quiz = _published_quiz(slug)
    player = current_user if current_user.is_authenticated else None
    return render_template(
        "play/quiz.html",
        card=catalogue.card(quiz, player),
        form=StartForm(),
        board=leaderboard.quiz_board(
            quiz.id,
            per_page=5,
            me_id=player and player.id,
            version=quiz.board_version,
        ),
    )


@bp.post("/quizzes/<slug>/start")
@login_required
def start(slug: str):
    quiz = _published_quiz(slug)
    try:
        attempt = attempts.start(current_user, quiz)
    except attempts.QuizUnavailable as exc:
        return render_error(409, str(exc), title="Quiz unavailable")
    db.session.commit()
    return redirect(url_for("play.attempt", attempt_id=attempt.id))


@bp.get("/attempts/<int:attempt_id>")
@login_required
def attempt(attempt_id: int):
    attempt = _player_attempt(attempt_id)
    position = attempts.next_position(attempt)
    if attempt.is_finished or position is None:
        return redirect(url_for("play.results", attempt_id=attempt.id))
    return redirect(url_for("play.question", attempt_id=attempt.id, position=position))


@bp.get("/attempts/<int:attempt_id>/questions/<int:position>")
@login_required
def question(attempt_id: int, position: int):
    attempt = _player_attempt(attempt_id)
    item = _review_item(attempt, position)
    return _render_question(attempt, item, AnswerForm(item.choice_ids))


@bp.post("/attempts/<int:attempt_id>/questions/<int:position>")
@leaves_player_unchanged
@login_required
def answer(attempt_id: int, position: int):
    closed = invalid = None
    with core_transaction():  # answering builds no ORM object
        sheet = _answer_sheet(attempt_id, position)
        item = _sheet_item(sheet, position)
        try:
            attempts.record_answer(sheet, position, posted_choices(request.form))
        except attempts.AttemptClosed as exc:
            closed = str(exc)  # the finish a late answer triggers is committed
        except attempts.InvalidAnswer as exc:
            invalid = str(exc)  # raised before anything is written
    if closed is not None:
        attempt = _player_attempt(attempt_id)
        return render_template("play/closed.html", attempt=attempt, message=closed), 409
    if invalid is not None:
        form = AnswerForm(item.choice_order)
        form.choice.errors = [invalid]
        return _question_page(attempt_id, position, form, status=422)
    return redirect(url_for("play.question", attempt_id=attempt_id, position=position))


@bp.post("/attempts/<int:attempt_id>/finish")
@leaves_player_unchanged
@login_required
def finish(attempt_id: int):
    attempt = _player_attempt(attempt_id, lock=True)
    attempts.finish(attempt)
    db.session.commit()
    return redirect(url_for("play.results", attempt_id=attempt_id))


@bp.get("/attempts/<int:attempt_id>/results")
@login_required
def results(attempt_id: int):
    attempt = _player_attempt(attempt_id)
    if not attempt.is_finished:
        return redirect(url_for("play.attempt", attempt_id=attempt.id))
    return render_template(
        "play/results.html",
        attempt=attempt,
        items=attempts.review(attempt),
        rank=leaderboard.player_rank(attempt.quiz_id, attempt.user_id),
        form=StartForm(),
    )


@bp.get("/leaderboard")
def overall_leaderboard():
    period, page = _board_args()
    board = leaderboard.overall_board(
        period=period, page=page, per_page=_page_size(), me_id=_me_id()
    )
    return render_template(
        "play/leaderboard.html", board=board, period=period, quiz=None
    )


@bp.get("/quizzes/<slug>/leaderboard")
def quiz_leaderboard(slug: str):
    quiz = _board_quiz(slug)
    period, page = _board_args()
    board = leaderboard.quiz_board(
        quiz.id,
        period=period,
        page=page,
        per_page=_page_size(),
        me_id=_me_id(),
        version=quiz.board_version,
    )
    return kept_page(
        "play/leaderboard.html",
        _section_key(board, period, quiz),
        board=board,
        period=period,
        quiz=quiz,
    )


@bp.app_template_global()
def board_rows(board: leaderboard.Board, overall: bool = False) -> Markup:
    """The rows of a board's table. A cached page of standings that the viewer is not
    on renders once per version of the standings, not once per view."""
    overall = bool(overall)
    template = "play/_board_rows.html"
    if board.key is None or board.me_on_page:
        return piece(template, board=board, overall=overall)
    return fragment(
        ("rows", board.key, overall), template, board=board, overall=overall
    )


@bp.app_template_global()
def board_section(board: leaderboard.Board, period: str, quiz, cohort=None) -> Markup:
    """A leaderboard page's section: heading, period tabs, rows, the viewer's rank
    and the pager. For a cached page of standings it is rendered once for each
    standing of the viewer it shows (not ranked, or the same rank line) and kept."""
    template = "play/_board_section.html"
    context = {"board": board, "period": period, "quiz": quiz, "cohort": cohort}
    key = _section_key(board, period, quiz, cohort)
    if key is None:
        return piece(template, **context)
    return fragment(key, template, **context)


def _section_key(board: leaderboard.Board, period: str, quiz, cohort=None):
    """What a leaderboard's section shows, for a cached page of standings (else
    None): the standings, the viewer's standing, the period and the quiz."""
    if board.key is None or cohort is not None:
        return None
    shown = None if quiz is None else (quiz.slug, quiz.title)
    return ("section", board.key, board.me, period, shown)


@bp.app_template_global()
def catalogue_card(card: catalogue.Card) -> Markup:
    """One quiz's card in the catalogue, rendered once for every player it fits (the
    same quiz, question count and best score, and an attempt open or not)."""
    key = _card_key(card)
    if key is None:
        return piece("play/_card.html", card=card)
    return fragment(("card", *key), "play/_card.html", card=card)


@bp.app_template_global()
def catalogue_grid(cards: list[catalogue.Card]) -> Markup:
    """The catalogue's cards, rendered once for every player whose cards are all the
    same (a newcomer's, say) and kept; each card is kept on its own too."""
    key = _grid_key(cards)
    if key is None:
        return piece("play/_card_grid.html", cards=cards)
    return fragment(key, "play/_card_grid.html", cards=cards)


def _grid_key(cards: list[catalogue.Card]) -> tuple | None:
    """What the catalogue's cards show, or None if one of them is not kept."""
    keys = tuple(_card_key(card) for card in cards)
    return None if None in keys else ("grid", keys)


def _card_key(card: catalogue.Card) -> tuple | None:
    """What a card shows; None for a card of a live ORM object (not kept)."""
    if not isinstance(card.quiz, catalogue.QuizInfo):
        return None
    return (card.quiz, card.question_count, card.best, card.open_attempt_id is not None)


# --- helpers shared by the views above ------------------------------------------------


_PUBLISHED_QUIZ = sa.select(Quiz).where(
    Quiz.slug == sa.bindparam("slug"), Quiz.is_published.is_(True)
)


# The leaderboard needs only these: a row, not a Quiz object, on the busiest page.
_BOARD_QUIZ = HotRead(
    sa.select(Quiz.id, Quiz.slug, Quiz.title, Quiz.board_version).where(
        Quiz.slug == sa.bindparam("slug"), Quiz.is_published.is_(True)
    )
)


def _board_quiz(slug: str):
    quiz = changes.kept(
        ("board quiz", slug), ("quiz",), lambda: _BOARD_QUIZ.first(slug=slug)
    )
    if quiz is None:
        abort(404)
    return quiz


def _published_quiz(slug: str) -> Quiz:
    quiz = db.session.scalar(_PUBLISHED_QUIZ, {"slug": slug})
    if quiz is None:
        abort(404)
    return quiz


def _player_attempt(attempt_id: int, *, lock: bool = False):
    try:
        return attempts.get_for_player(attempt_id, current_user, lock=lock)
    except attempts.AttemptNotFound:
        abort(404)


def _answer_sheet(attempt_id: int, position: int) -> attempts.AnswerSheet:
    try:
        return attempts.answer_sheet(attempt_id, current_user, position)
    except attempts.AttemptNotFound:
        abort(404)


def _sheet_item(sheet: attempts.AnswerSheet, position: int) -> attempts.SheetItem:
    try:
        return sheet.item(position)
    except attempts.QuestionNotInAttempt:
        abort(404)


def _question_page(attempt_id: int, position: int, form, status: int):
    attempt = _player_attempt(attempt_id)
    return _render_question(attempt, _review_item(attempt, position), form, status)


def _review_item(attempt, position: int) -> attempts.ReviewItem:
    try:
        return attempts.review_item(attempt, position)
    except attempts.QuestionNotInAttempt:
        abort(404)


def _render_question(attempt, item, form, status: int = 200):
    return (
        render_template(
            "play/question.html",
            attempt=attempt,
            item=item,
            form=form,
            finish_form=FinishForm(),
            total=len(attempt.items),
            answered=len(attempt.responses),
            expired=attempts.is_expired(attempt),
            seconds_left=attempts.seconds_left(attempt),
            next_position=attempts.next_position(attempt),
        ),
        status,
    )


def _board_args() -> tuple[str, int]:
    period = request.args.get("period", "all")
    if period not in leaderboard.PERIODS:
        period = "all"
    page = request.args.get("page", 1, type=int)
    return period, max(1, page or 1)


def _page_size() -> int:
    return current_app.config["LEADERBOARD_PAGE_SIZE"]


def _me_id() -> int | None:
    return current_user.id if current_user.is_authenticated else None

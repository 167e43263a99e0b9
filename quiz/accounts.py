"""Accounts: registration, sign-in, passwords, sessions, roles; guests become accounts.

A guest who registers becomes the account (same row, so every attempt stays theirs).
A guest who signs in to an existing account hands their attempts and leaderboard
entries over to it.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from . import attempts, audit, leaderboard, passwords
from .extensions import db
from .models import (
    OPEN_ATTEMPT_INDEX,
    ROLES,
    Attempt,
    PlayerTotal,
    User,
    new_session_token,
    utcnow,
)
from .querying import user_matches

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AccountError(Exception):
    """An account operation was refused; the message is safe to show.

    ``field`` names the form field the message belongs next to, if any.
    """

    field: str | None = None


class InvalidEmail(AccountError):
    field = "email"


class EmailTaken(AccountError):
    field = "email"


class WeakPassword(AccountError):
    field = "password"


class WrongPassword(AccountError):
    field = "current_password"


class SignInFailed(AccountError):
    """Wrong e-mail or password: one message for both, so accounts cannot be probed."""

    def __init__(self):
        super().__init__("The e-mail address or password is not right.")


class AccountDisabled(AccountError):
    def __init__(self):
        super().__init__("This account is disabled. Ask an administrator to enable it.")


def normalise_email(email: str | None) -> str:
    return (email or "").strip().lower()


def find_by_email(email: str) -> User | None:
    return db.session.scalar(
        sa.select(User).where(User.email == normalise_email(email))
    )


def check_new_password(password: str) -> None:
    problems = passwords.problems(password)
    if problems:
        raise WeakPassword(" ".join(problems))


def create_account(
    display_name: str, email: str, password: str, role: str = "player"
) -> User:
    """A new account; raises ``EmailTaken`` or ``WeakPassword``."""
    user = User(display_name=display_name, role=role)
    _make_account(user, display_name, email, password)
    db.session.add(user)
    _flush_or_taken()
    return user


def _flush_or_taken() -> None:
    """Flush; a racing registration of the same address loses with ``EmailTaken``."""
    try:
        with db.session.begin_nested():
            db.session.flush()
    except sa.exc.IntegrityError:
        raise EmailTaken(
            "An account with this e-mail address already exists. Sign in instead."
        ) from None


def register(display_name: str, email: str, password: str, guest: User | None) -> User:
    """Register a player; a guest's own row becomes the account, keeping its attempts."""
    if guest is None or not guest.is_guest:
        return create_account(display_name, email, password)
    _make_account(guest, display_name, email, password)
    guest.is_guest = False
    guest.session_token = new_session_token()
    _flush_or_taken()
    return guest


def _make_account(user: User, display_name: str, email: str, password: str) -> None:
    email = normalise_email(email)
    if not EMAIL_RE.match(email):
        raise InvalidEmail("Enter an e-mail address such as name@example.org.")
    if find_by_email(email) is not None:
        raise EmailTaken(
            "An account with this e-mail address already exists. Sign in instead."
        )
    check_new_password(password)
    user.display_name = display_name
    user.email = email
    user.password_hash = passwords.hash_password(password)


def authenticate(email: str, password: str) -> User:
    """The account for these credentials; re-hashes the password if parameters changed."""
    user = find_by_email(email)
    if user is None or user.is_guest:
        passwords.verify(None, password)
        raise SignInFailed()
    if not passwords.verify(user.password_hash, password):
        raise SignInFailed()
    if user.is_disabled:
        raise AccountDisabled()
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    user.last_login_at = utcnow()
    return user


def merge_guest(guest: User, account: User) -> int:
    """Hand a guest's attempts and leaderboard entries to an account; delete the guest.

    An open attempt of the guest at a quiz where the account has one open too is
    finished first (one open attempt per player and quiz). The account may start
    one of those quizzes elsewhere meanwhile: the hand-over is then undone and done
    again, finishing that attempt of the guest's too. Returns attempts moved.
    """
    if not guest.is_guest or guest.id == account.id:
        return 0
    # The guest's row first: an attempt the guest starts meanwhile (another tab)
    # waits for it, and finds the guest gone, instead of being moved unlocked.
    db.session.execute(_LOCK_USER, {"id": guest.id})
    # Then the attempts, as a finish locks its attempt first: a sweep finishing one
    # of them (``attempts.close_expired``) commits its best score before it is moved.
    guest_attempts = list(
        db.session.scalars(
            sa.select(Attempt)
            .where(Attempt.user_id == guest.id)
            .order_by(Attempt.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )
    tries = 0
    while True:
        tries += 1
        account_open = _open_quizzes(account)
        try:
            with db.session.begin_nested():  # its locks go if it is rolled back
                _hand_over(guest, account, guest_attempts, account_open)
            return len(guest_attempts)
        except sa.exc.IntegrityError as error:
            # Only the account's own open attempt started since is worth a retry.
            if tries == HAND_OVER_TRIES or not _clashes_with_open_attempt(error):
                raise


HAND_OVER_TRIES = 3
_LOCK_USER = sa.select(User.id).where(User.id == sa.bindparam("id")).with_for_update()


def _clashes_with_open_attempt(error: sa.exc.IntegrityError) -> bool:
    """Whether the error is the one-open-attempt-per-player-and-quiz index's
    (PostgreSQL names it; SQLite's writers never race here)."""
    diagnostics = getattr(error.orig, "diag", None)
    return getattr(diagnostics, "constraint_name", None) == OPEN_ATTEMPT_INDEX


def _open_quizzes(user: User) -> set[int]:
    """The quizzes where the player has an open attempt, as last committed."""
    return set(
        db.session.scalars(
            sa.select(Attempt.quiz_id).where(
                Attempt.user_id == user.id, Attempt.finished_at.is_(None)
            )
        )
    )


def _hand_over(
    guest: User, account: User, guest_attempts: list[Attempt], account_open: set[int]
) -> None:
    quiz_ids = {a.quiz_id for a in guest_attempts}
    # Every board the hand-over changes, before finishing attempts or moving bests.
    leaderboard.lock_boards(quiz_ids)
    for attempt in guest_attempts:
        if attempt.finished_at is None and attempt.quiz_id in account_open:
            attempts.finish(attempt)
    leaderboard.remove_bests(guest.id)
    db.session.execute(sa.delete(PlayerTotal).where(PlayerTotal.user_id == guest.id))
    db.session.execute(
        sa.update(Attempt).where(Attempt.user_id == guest.id).values(user_id=account.id)
    )
    db.session.expire_all()
    for quiz_id in sorted(quiz_ids):
        leaderboard.rebuild_best(quiz_id, account.id)
    if quiz_ids:
        leaderboard.refresh_total(account.id, utcnow())
    db.session.delete(db.session.get(User, guest.id))
    db.session.flush()


def end_sessions(user: User) -> None:
    """Sign the user out everywhere: every session and remember-me cookie stops working."""
    user.session_token = new_session_token()


def change_password(user: User, current: str, new: str) -> None:
    if not passwords.verify(user.password_hash, current):
        raise WrongPassword("The current password is not right.")
    check_new_password(new)
    user.password_hash = passwords.hash_password(new)
    end_sessions(user)


# --- administration -------------------------------------------------------------------


def set_role(actor: User | None, user: User, role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"Unknown role {role!r}; use one of {', '.join(ROLES)}.")
    if user.is_guest:
        raise AccountError("Guests cannot hold a role; they must register first.")
    if user.role == role:
        return
    _refuse_last_admin(actor, user, f"change the role of {user.email}")
    audit.record(
        actor,
        "user.role",
        "user",
        user.id,
        f"Role of {user.email}: {user.role} → {role}",
        old=user.role,
        new=role,
    )
    user.role = role
    end_sessions(user)


def set_disabled(actor: User | None, user: User, disabled: bool) -> None:
    if user.is_disabled == disabled:
        return
    if disabled:
        _refuse_last_admin(actor, user, f"disable {user.email}")
        end_sessions(user)
    user.is_disabled = disabled
    action = "user.disable" if disabled else "user.enable"
    verb = "Disabled" if disabled else "Enabled"
    audit.record(
        actor, action, "user", user.id, f"{verb} {user.email or user.display_name}"
    )


def set_password(actor: User | None, user: User, password: str) -> None:
    """Set a new password for a user who lost theirs; signs them out everywhere."""
    if user.is_guest:
        raise AccountError("Guests have no password.")
    check_new_password(password)
    user.password_hash = passwords.hash_password(password)
    end_sessions(user)
    audit.record(
        actor, "user.password", "user", user.id, f"Set a new password for {user.email}"
    )


def _refuse_last_admin(actor: User | None, user: User, what: str) -> None:
    if user.role != "admin" or user.is_disabled:
        return
    # Lock every active admin row: two admins demoting each other at once must not
    # both succeed.
    admins = db.session.scalars(
        sa.select(User.id)
        .where(User.role == "admin", User.is_disabled.is_(False))
        .with_for_update()
    ).all()
    if len(admins) <= 1:
        raise AccountError(f"Cannot {what}: they are the only active administrator.")


def search(text: str | None = None, role: str | None = None) -> sa.Select:
    """Accounts (not guests) matching a search of e-mail or name, by e-mail."""
    statement = sa.select(User).where(User.is_guest.is_(False)).order_by(User.email)
    if text:
        statement = statement.where(user_matches(text))
    if role in ROLES:
        statement = statement.where(User.role == role)
    return statement

"""Small factories for tests: banks as YAML text, quizzes and players in the database."""

from __future__ import annotations

import io
import textwrap

from quiz import accounts, banks, players
from quiz.extensions import db
from quiz.models import Quiz, User

BANK_YAML = """\
id: {slug}
title: Test bank {slug}
theme: Testing
description: A bank for tests.
settings:
  questions_per_attempt: {per_attempt}
  shuffle: {shuffle}
  time_limit_minutes: {minutes}
  pass_mark: 50
questions:
  - id: {slug}-single
    type: single
    difficulty: easy
    prompt: Which port does HTTPS use by default?
    choices:
      - text: "80"
      - text: "443"
        correct: true
      - text: "8080"
    explanation: HTTPS listens on 443 by default; 80 is plain HTTP.
    source: RFC 2818, HTTP Over TLS (IETF)
  - id: {slug}-multiple
    type: multiple
    difficulty: hard
    prompt: Which of these are second factors? Select all that apply.
    choices:
      - text: Authenticator app code
        correct: true
      - text: Hardware security key
        correct: true
      - text: Mother's maiden name
    explanation: Something you have counts; a second thing you know does not.
    source: NIST SP 800-63B (NIST)
  - id: {slug}-tf
    type: true_false
    prompt: You should report a phishing e-mail you clicked.
    answer: true
    explanation: Reporting early lets the team contain the damage.
    source: Phishing attacks, defending your organisation (UK NCSC)
"""


def bank_yaml(slug="test-bank", *, per_attempt=3, shuffle="false", minutes=0) -> str:
    return BANK_YAML.format(
        slug=slug, per_attempt=per_attempt, shuffle=shuffle, minutes=minutes
    )


def load_bank(text: str, filename: str = "bank.yaml") -> Quiz:
    """Parse and sync one bank from YAML text; return its quiz (committed)."""
    bank = banks.parse_bank(textwrap.dedent(text).encode(), filename)
    banks.sync_banks([bank])
    db.session.commit()
    return db.session.scalar(db.select(Quiz).where(Quiz.slug == bank.slug))


def make_quiz(slug="test-bank", **options) -> Quiz:
    return load_bank(bank_yaml(slug, **options))


PASSWORD = "correct horse battery staple"


def make_account(
    email="admin@example.org", role="admin", name=None, password=PASSWORD
) -> User:
    user = accounts.create_account(name or email.split("@")[0], email, password, role)
    db.session.commit()
    return user


def make_player(name="Alice") -> User:
    player = players.create_guest(name)
    db.session.commit()
    return player


def upload_bank(client, content: bytes, filename="bank.yaml"):
    """Upload a bank file through the admin import form."""
    return client.post(
        "/admin/imports",
        data={"bank": (io.BytesIO(content), filename)},
        content_type="multipart/form-data",
    )

"""Password policy and hashing: argon2id, NIST SP 800-63B style rules."""

from __future__ import annotations

import secrets
import unicodedata
from functools import cache
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8
MAX_LENGTH = 256

# argon2id with the library's RFC 9106 "low memory" profile defaults.
_hasher = PasswordHasher(type=Type.ID)


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of the 3,000 most common passwords, lower-cased."""
    text = resources.files("quiz.data").joinpath("common-passwords.txt").read_text()
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line and line[0] != "#"
    )


def _normal(password: str) -> str:
    # The same password typed on another keyboard or system may arrive composed or
    # decomposed; NIST SP 800-63B asks for normalisation before hashing.
    return unicodedata.normalize("NFKC", password)


def problems(password: str) -> list[str]:
    """Why a new password is refused (empty when it is acceptable).

    Length is what counts: at least 8 characters, any characters, no composition
    rules, and not one of the most common passwords.
    """
    password = _normal(password)
    if len(password) < MIN_LENGTH:
        return [f"Use at least {MIN_LENGTH} characters."]
    if len(password) > MAX_LENGTH:
        return [f"Use at most {MAX_LENGTH} characters."]
    if password.lower() in common_passwords():
        return ["This is one of the most common passwords; choose another."]
    return []


def hash_password(password: str) -> str:
    return _hasher.hash(_normal(password))


def verify(stored_hash: str | None, password: str) -> bool:
    """Check a password against a stored hash; False for no hash or a malformed one."""
    if not stored_hash:
        # Spend the same time as a real check, so timing does not tell accounts apart.
        try:
            _hasher.verify(_dummy_hash(), password)
        except VerificationError:
            pass
        return False
    try:
        return _hasher.verify(stored_hash, _normal(password))
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's."""
    return _hasher.check_needs_rehash(stored_hash)


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(32))

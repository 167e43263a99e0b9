"""Players: guests now; accounts build on the same ``User`` rows."""

from __future__ import annotations

from .extensions import db
from .models import User


def create_guest(display_name: str) -> User:
    """A guest player with a display name, held in the session by the caller."""
    player = User(display_name=display_name, is_guest=True, role="player")
    db.session.add(player)
    db.session.flush()
    return player

"""Failed sign-in limits, per account and per client address.

Only failures count, yet parallel guesses must not slip through: every attempt first
takes one unit from each limit (atomically, in the shared Flask-Limiter storage),
and a successful sign-in gives its units back. Limits use fixed windows, whose
counters can be given back exactly. If the storage is down, sign-in goes on without
limits and the error is logged (the other limits fall back to per-process memory).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from flask import current_app
from limits import RateLimitItem, parse

from .extensions import limiter


class Throttled(Exception):
    """Too many failed attempts; ``retry_after`` is in seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"Too many attempts; retry in {retry_after} s.")
        self.retry_after = retry_after


@dataclass
class Reservation:
    """Units taken from the limits for one attempt; ``release`` gives them back."""

    taken: list[tuple[RateLimitItem, tuple[str, ...]]] = field(default_factory=list)

    def release(self) -> None:
        try:
            for item, identifiers in self.taken:
                limiter.limiter.hit(item, *identifiers, cost=-1)
        except Exception:
            current_app.logger.exception("Rate-limit storage unavailable")
        self.taken.clear()


def reserve_sign_in(email: str, address: str) -> Reservation:
    """Take one unit per limit for a sign-in attempt, or raise ``Throttled``."""
    config = current_app.config
    prefix = (
        config.get("RATELIMIT_KEY_PREFIX") or "quiz"
    )  # apps sharing a Redis stay apart
    limits = [
        (parse(config["RATELIMIT_SIGNIN_ACCOUNT"]), (prefix, "sign-in-account", email)),
        (
            parse(config["RATELIMIT_SIGNIN_ADDRESS"]),
            (prefix, "sign-in-address", address),
        ),
    ]
    reservation = Reservation()
    try:
        for item, identifiers in limits:
            reservation.taken.append((item, identifiers))
            if not limiter.limiter.hit(item, *identifiers):
                reset_at = limiter.limiter.get_window_stats(
                    item, *identifiers
                ).reset_time
                reservation.release()
                raise Throttled(max(1, math.ceil(reset_at - time.time())))
    except Throttled:
        raise
    except Exception:  # the storage (Redis) is down: let people sign in, loudly
        current_app.logger.exception(
            "Rate-limit storage unavailable; sign-in not limited"
        )
        return Reservation()
    return reservation

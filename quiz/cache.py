"""A small per-process cache for what the busiest pages read, keyed by versions.

Every key carries the version that makes its value stale: a quiz's
``board_version`` for standings, the site's ``content_version`` for the catalogue.
Those versions live in the database and go up in the transaction that changes what
they cover, so every app server misses and reads afresh as soon as the change is
committed. Entries also expire after ``max_age`` seconds, which bounds how long a
renamed player keeps an old name on a cached board (60 s for the data, 20 s more for
the rendered section and 20 s more for the page that holds it).

Rendered pieces of pages (``quiz.fragments``) have a cache of their own: many of
them are per viewer (a header per session, a leaderboard section per ranked
viewer), and however many viewers come, they must not push out the shared data that
every view reads (standings, the catalogue). Whole pages, kept per viewer too and
larger, have a smaller cache of their own.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from flask import Flask, current_app

T = TypeVar("T")
EXTENSION = "quiz.cache"
FRAGMENTS = "quiz.fragments"
PAGES = "quiz.pages"


class VersionedCache:
    """A least-recently-used mapping with a maximum age, safe across threads."""

    def __init__(self, size: int = 2048, max_age: float = 60.0):
        self.size = size
        self.max_age = max_age
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, key: Hashable, compute: Callable[[], T], *, keep_none: bool = True
    ) -> T:
        now = time.monotonic()
        found = self._fresh(key, now)
        if found is not None:
            return found[1]
        value = compute()
        if value is None and not keep_none:
            return value
        self.put(key, value, now=now)  # its age counts from before it was computed
        return value

    def find(self, key: Hashable):
        """The value kept under ``key``, or None."""
        found = self._fresh(key, time.monotonic())
        return None if found is None else found[1]

    def put(self, key: Hashable, value, *, now: float | None = None) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() if now is None else now, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def _fresh(self, key: Hashable, now: float) -> tuple | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None and now - found[0] < self.max_age:
                self._items.move_to_end(key)
                return found
        return None

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = VersionedCache()
    # Pieces and pages are made from data kept up to a minute, and pages hold
    # pieces: kept 20 s each, what they show is at most 100 s older than the data.
    app.extensions[FRAGMENTS] = VersionedCache(size=4096, max_age=20.0)
    # Whole pages (``quiz.layout.kept_page``), some 7 KB each: about 7 MB at most.
    app.extensions[PAGES] = VersionedCache(size=1024, max_age=20.0)


def cached(key: Hashable, compute: Callable[[], T], *, store: str = EXTENSION) -> T:
    """This process's value for ``key`` (in the data cache, or the one named by
    ``store``), computed on a miss."""
    return current_app.extensions[store].get(key, compute)

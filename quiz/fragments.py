"""Pieces of pages rendered once and kept, for the busiest pages.

A piece is kept under a key that holds everything the piece shows (a board's
version and page, a quiz card's values), plus the application root, since pieces
hold links. It is then served from this process's cache of pieces (see
``quiz.cache``) to every viewer it fits, instead of being rendered again on each
view.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

from flask import render_template, request
from markupsafe import Markup

from .cache import FRAGMENTS, cached

T = TypeVar("T")


def fragment(key: Hashable, template: str, **context) -> Markup:
    """``template`` rendered with ``context``: once per ``key``, then kept."""
    return kept(template, key, lambda: piece(template, **context))


def kept(
    template: str, key: Hashable, render: Callable[[], T], *, store: str = FRAGMENTS
) -> T:
    """What ``render`` makes of ``template``: once per ``key``, then kept (in the
    cache of pieces, or the one named by ``store``)."""
    return cached(("fragment", template, request.script_root, key), render, store=store)


def piece(template: str, **context) -> Markup:
    """``template`` rendered with ``context``, as HTML to place in a page."""
    # Rendered by an autoescaping template: already safe HTML.
    return Markup(render_template(template, **context))  # nosec B704

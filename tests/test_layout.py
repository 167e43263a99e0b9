"""The site's header: kept per viewer state, never showing another viewer's."""

import re

from quiz import layout
from quiz.cache import FRAGMENTS, PAGES, VersionedCache
from quiz.extensions import db
from quiz.models import User
from tests.factories import PASSWORD, make_account, make_quiz

TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def _sign_in(app, email: str):
    client = app.test_client()
    page = client.get("/auth/login").text
    client.post(
        "/auth/login",
        data={
            "email": email,
            "password": PASSWORD,
            "csrf_token": TOKEN.search(page).group(1),
        },
    )
    return client


def _header(page: str) -> str:
    return page[page.index('<header class="site-header">') : page.index("</header>")]


def test_visitors_share_a_header_that_returns_each_to_their_page(app, renders):
    with app.app_context():
        make_quiz("alpha")
    first, second = app.test_client(), app.test_client()
    for client in (first, second):
        assert 'href="/auth/login?next=/leaderboard"' in client.get("/leaderboard").text
    assert renders.count(layout.TEMPLATE) == 1
    quiz_page = first.get("/quizzes/alpha").text
    assert 'href="/auth/login?next=/quizzes/alpha"' in quiz_page
    assert renders.count(layout.TEMPLATE) == 2
    marked = re.findall(r'<a href="([^"]+)" aria-current="page">', _header(quiz_page))
    assert marked == []  # a quiz page is neither "Quizzes" nor "Leaderboard"
    catalogue = _header(first.get("/").text)
    assert re.findall(r'<a href="([^"]+)" aria-current="page">', catalogue) == ["/"]


def test_each_session_signs_out_with_its_own_token(app, renders):
    """Two sessions of one account get headers with their own session's CSRF
    token, served from the cache, and sign out with it."""
    app.config["WTF_CSRF_ENABLED"] = True
    with app.app_context():
        make_account("ann@example.org", role="player", name="Ann")
        make_quiz("alpha")
    ann, again = _sign_in(app, "ann@example.org"), _sign_in(app, "ann@example.org")
    tokens = {}
    for name, client in (("ann", ann), ("again", again)):
        client.get("/")  # the session's token is made here, then the header kept
        before = renders.count(layout.TEMPLATE)
        page = client.get("/leaderboard").text
        assert renders.count(layout.TEMPLATE) == before + 1 and "Ann" in _header(page)
        assert client.get("/leaderboard").text == page  # served from the cache
        assert renders.count(layout.TEMPLATE) == before + 1
        tokens[name] = TOKEN.search(_header(page)).group(1)
    assert tokens["ann"] != tokens["again"]
    with ann.session_transaction() as session:
        raw = session["csrf_token"]
    with again.session_transaction() as session:
        assert session["csrf_token"] != raw
    signed_out = ann.post("/auth/logout", data={"csrf_token": tokens["ann"]})
    assert signed_out.status_code == 302
    assert "Sign in" in _header(ann.get("/").text)
    # Signing out ends every session of the account: no kept header says otherwise.
    assert "Sign in" in _header(again.get("/").text)


def test_a_new_name_or_role_shows_at_once(app, auth, client):
    with app.app_context():
        user_id = make_account("bea@example.org", role="player", name="Bea").id
    auth.login("bea@example.org")
    header = _header(client.get("/").text)
    assert "Bea" in header and "/admin/" not in header
    with app.app_context():
        user = db.session.get(User, user_id)
        user.display_name, user.role = "Beatrice", "admin"
        db.session.commit()
    header = _header(client.get("/").text)
    assert "Beatrice" in header and 'href="/admin/"' in header


def test_paths_of_the_visitors_choosing_share_one_kept_header(app, renders):
    """Every unknown path is the same 404 endpoint: one header is kept for all of
    them, each sign-in link returning to its own path, escaped."""
    client = app.test_client()
    cache = app.extensions[FRAGMENTS]
    assert isinstance(cache, VersionedCache)
    for n in range(20):
        page = client.get(f"/made-up-{n}?x=1").text
        assert f'href="/auth/login?next=/made-up-{n}"' in page
    odd = _header(client.get("/made-up/%22%3E%3Cscript%3E").text)
    assert "<script>" not in odd
    assert 'href="/auth/login?next=/made-up/%22%3E%3Cscript%3E"' in odd
    assert renders.count(layout.TEMPLATE) == 1
    assert sum(key[-1][0] == "header" for key in cache._items) == 1


def _pages_rendered(monkeypatch) -> list:
    """The templates of whole pages that ``layout.kept_page`` renders."""
    made = []
    real = layout.render_template

    def counted(template, **context):
        made.append(template)
        return real(template, **context)

    monkeypatch.setattr(layout, "render_template", counted)
    return made


def test_visitors_share_a_kept_page_each_returning_to_it(app, monkeypatch):
    pages = _pages_rendered(monkeypatch)
    with app.app_context():
        make_quiz("alpha")
    for client in (app.test_client(), app.test_client()):
        board = client.get("/quizzes/alpha/leaderboard").text
        assert 'href="/auth/login?next=/quizzes/alpha/leaderboard"' in board
        assert layout.SIGN_IN_URL not in board
    assert pages == ["play/leaderboard.html"]
    catalogue = app.test_client().get("/").text
    assert 'href="/auth/login?next=/"' in catalogue
    assert pages == ["play/leaderboard.html", "play/catalogue.html"]
    # Pages have a cache of their own: they push out no piece of a page.
    kinds = {key[-1][0] for key in app.extensions[PAGES]._items}
    assert kinds == {"page"}
    assert "page" not in {key[-1][0] for key in app.extensions[FRAGMENTS]._items}


def test_a_message_shows_once_on_a_page_rendered_for_it(app, monkeypatch):
    """A page with a message waiting is rendered afresh and not kept; the next view
    is the kept page, without the message."""
    pages = _pages_rendered(monkeypatch)
    with app.app_context():
        make_quiz("alpha")
    client = app.test_client()
    client.post("/guest", data={"display_name": "Flo"})
    welcome = client.get("/").text
    assert "Welcome, Flo" in welcome
    again = client.get("/").text
    assert "Welcome, Flo" not in again and "Flo" in _header(again)
    assert client.get("/").text == again
    assert pages == ["play/catalogue.html"] * 2


def test_each_viewer_gets_a_kept_page_of_their_own_standing(app, monkeypatch):
    """Guests with other names never share a kept page."""
    pages = _pages_rendered(monkeypatch)
    with app.app_context():
        make_quiz("alpha")
    names = ("Ada", "Bob")
    clients = {name: app.test_client() for name in names}
    for name, client in clients.items():
        client.post("/guest", data={"display_name": name})
        client.get("/")
    for _ in range(2):  # rendered and kept, then served from the cache
        for path in ("/", "/quizzes/alpha/leaderboard"):
            for name, client in clients.items():
                header = _header(client.get(path).text)
                assert name in header
                assert all(other not in header for other in names if other != name)
    # The welcome message shown on each catalogue first, then one kept page each.
    assert pages == ["play/catalogue.html"] * 4 + ["play/leaderboard.html"] * 2

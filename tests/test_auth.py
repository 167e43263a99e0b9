"""Accounts: register, sign in and out, sessions, passwords, rate limits, guests."""

import re

import pytest
import sqlalchemy as sa

from quiz import passwords
from quiz.extensions import db
from quiz.models import Attempt, BestScore, User
from tests.factories import PASSWORD, make_account, make_quiz


def register(client, **overrides):
    data = {
        "display_name": "Reg User",
        "email": "reg@example.org",
        "password": PASSWORD,
        "confirm": PASSWORD,
        **overrides,
    }
    return client.post("/auth/register", data=data)


def user_by_email(app, email):
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == email))
        if user is not None:
            db.session.expunge(user)
        return user


def current_name(client) -> str | None:
    html = client.get("/").get_data(as_text=True)
    match = re.search(r'href="/auth/account"[^>]*>([^<]+)</a>', html)
    return match.group(1) if match else None


def test_register_signs_in_and_stores_an_argon2id_hash(client, app):
    response = register(client, email="  Reg@Example.ORG ")
    assert response.status_code == 302
    user = user_by_email(app, "reg@example.org")
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert current_name(client) == "Reg User"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"password": "short", "confirm": "short"}, "Use 8 to 256 characters."),
        (
            {"password": "password1", "confirm": "password1"},
            "one of the most common passwords",
        ),
        (
            {"password": "Iloveyou", "confirm": "Iloveyou"},
            "one of the most common passwords",
        ),
        ({"confirm": PASSWORD + "x"}, "The two passwords are not the same."),
        ({"display_name": "n" * 41}, "Use 2 to 40 characters."),
        (
            {"display_name": "\u202eevil"},
            "letters, digits, spaces and punctuation only",
        ),
        (
            {"email": "not-an-email"},
            "Enter an e-mail address such as name@example.org.",
        ),
        ({"email": ""}, "Enter your e-mail address."),
    ],
)
def test_register_refuses_bad_input_with_a_message(client, app, overrides, message):
    response = register(client, **overrides)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_register_refuses_a_duplicate_email(client, app):
    with app.app_context():
        make_account("reg@example.org", role="player")
    response = register(client, email="REG@example.org")
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "password",
    ["x" * 8, "ünïcödé passwörd 🔐", "p" * 64, "long " * 40, "  spaced  out  "],
)
def test_any_characters_and_long_passwords_are_accepted(client, app, password):
    response = register(client, password=password, confirm=password)
    assert response.status_code == 302
    client.post("/auth/logout")
    assert (
        client.post(
            "/auth/login", data={"email": "reg@example.org", "password": password}
        ).status_code
        == 302
    )


def test_wrong_password_and_unknown_email_look_the_same(client, app, auth):
    with app.app_context():
        make_account()
    wrong = auth.login(password="wrong password!")
    unknown = auth.login(email="nobody@example.org")
    assert wrong.status_code == unknown.status_code == 200
    message = "The e-mail address or password is not right."
    assert message in wrong.get_data(as_text=True)
    assert message in unknown.get_data(as_text=True)
    assert current_name(client) is None


def test_sign_in_and_out(client, app, auth):
    with app.app_context():
        make_account(name="Ada")
    assert auth.login().status_code == 302
    assert current_name(client) == "Ada"
    assert auth.logout().status_code == 302
    assert current_name(client) is None
    assert client.get("/auth/logout").status_code == 405  # sign-out is a POST


def test_disabled_account_cannot_sign_in(client, app, auth):
    with app.app_context():
        make_account(role="player").is_disabled = True
        db.session.commit()
    response = auth.login()
    assert "This account is disabled" in response.get_data(as_text=True)
    assert current_name(client) is None


def test_sign_in_starts_a_new_session(client, app, auth):
    with app.app_context():
        make_account()
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
    auth.login()
    with client.session_transaction() as session:
        assert "planted" not in session


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "http:///evil.example",
        "javascript:alert(1)",
        "https://evil.example/x",
    ],
)
def test_next_after_sign_in_stays_on_this_site(client, app, auth, target):
    with app.app_context():
        make_account()
    assert auth.login(next=target).headers["Location"] == "/"


def test_next_after_sign_in_goes_to_a_local_page(client, app, auth):
    with app.app_context():
        make_account()
    assert auth.login(next="/leaderboard?period=week").headers["Location"] == (
        "/leaderboard?period=week"
    )


def test_sign_out_ends_other_sessions_and_remember_cookies(app, auth, client):
    with app.app_context():
        make_account(name="Ada")
    other = app.test_client()
    other.post(
        "/auth/login",
        data={"email": "admin@example.org", "password": PASSWORD, "remember": "y"},
    )
    remember = other.get_cookie("remember_token")
    assert remember is not None
    auth.login()
    assert current_name(other) == "Ada"
    auth.logout()
    assert current_name(other) is None
    replay = app.test_client()
    replay.set_cookie("remember_token", remember.value)
    assert current_name(replay) is None


def test_remember_me_restores_the_session(app):
    with app.app_context():
        make_account(name="Ada")
    first = app.test_client()
    first.post(
        "/auth/login",
        data={"email": "admin@example.org", "password": PASSWORD, "remember": "y"},
    )
    fresh = app.test_client()
    fresh.set_cookie("remember_token", first.get_cookie("remember_token").value)
    assert current_name(fresh) == "Ada"


def test_change_password_ends_other_sessions(app, client, auth):
    with app.app_context():
        make_account(name="Ada")
    auth.login()
    other = app.test_client()
    other.post("/auth/login", data={"email": "admin@example.org", "password": PASSWORD})
    new = "a brand new passphrase"
    wrong = client.post(
        "/auth/password",
        data={"current_password": "nope nope", "password": new, "confirm": new},
    )
    assert wrong.status_code == 422
    assert "The current password is not right." in wrong.get_data(as_text=True)
    response = client.post(
        "/auth/password",
        data={"current_password": PASSWORD, "password": new, "confirm": new},
    )
    assert response.status_code == 302
    assert current_name(client) == "Ada"  # this session goes on
    assert current_name(other) is None
    auth.logout()
    assert auth.login(password=new).status_code == 302


def test_password_is_rehashed_when_parameters_change(app, auth, monkeypatch):
    from argon2 import PasswordHasher, Type

    with app.app_context():
        make_account()
    old_hash = user_by_email(app, "admin@example.org").password_hash
    monkeypatch.setattr(
        passwords,
        "_hasher",
        PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1, type=Type.ID),
    )
    assert auth.login().status_code == 302
    new_hash = user_by_email(app, "admin@example.org").password_hash
    assert new_hash != old_hash and "t=2" in new_hash
    assert passwords.verify(new_hash, PASSWORD)


def test_failed_sign_ins_are_limited_per_account(app, client, auth):
    with app.app_context():
        make_account()
    for _ in range(5):
        assert auth.login(password="wrong password!").status_code == 200
    response = auth.login()  # even the right password waits now
    assert response.status_code == 429
    assert "wait" in response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) > 0
    # Another account from the same address is not locked out by this one.
    with app.app_context():
        make_account("other@example.org", role="player")
    assert auth.login(email="other@example.org").status_code == 302


def test_failed_sign_ins_are_limited_per_address(app, auth):
    for number in range(20):
        assert auth.login(email=f"nobody{number}@example.org").status_code == 200
    assert auth.login(email="someone-else@example.org").status_code == 429


def test_successful_sign_ins_do_not_count(app, client, auth):
    with app.app_context():
        make_account()
    for _ in range(8):
        assert auth.login().status_code == 302
        auth.logout()


def test_rate_limit_store_is_configurable(app_config):
    from quiz import create_app

    app_config["RATELIMIT_STORAGE_URI"] = "memory://"
    assert create_app(app_config).config["RATELIMIT_STORAGE_URI"] == "memory://"


def play_as_guest(app, client, name="Guesty"):
    with app.app_context():
        make_quiz("alpha")
    client.post("/guest", data={"display_name": name})
    location = client.post("/quizzes/alpha/start").headers["Location"]
    attempt_id = int(re.search(r"/attempts/(\d+)", location).group(1))
    client.post(f"/attempts/{attempt_id}/finish")
    return attempt_id


def test_guest_who_registers_keeps_attempts_and_entries(app, client):
    attempt_id = play_as_guest(app, client)
    with app.app_context():
        guest_id = db.session.get(Attempt, attempt_id).user_id
    assert register(client, display_name="Now Registered").status_code == 302
    user = user_by_email(app, "reg@example.org")
    assert user.id == guest_id and not user.is_guest
    html = client.get("/quizzes/alpha/leaderboard").get_data(as_text=True)
    assert "Now Registered" in html
    assert f"/attempts/{attempt_id}/results" in client.get("/auth/account").get_data(
        as_text=True
    )


def test_guest_who_signs_in_hands_attempts_to_the_account(app, client, auth):
    attempt_id = play_as_guest(app, client)
    with app.app_context():
        account = make_account(name="Account Holder", role="player")
        account_id = account.id
    assert auth.login().status_code == 302
    with app.app_context():
        assert db.session.get(Attempt, attempt_id).user_id == account_id
        best = db.session.scalars(sa.select(BestScore)).all()
        assert [(b.user_id, b.attempt_id) for b in best] == [(account_id, attempt_id)]
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1
    html = client.get("/quizzes/alpha/leaderboard").get_data(as_text=True)
    assert "Account Holder" in html and "Guesty" not in html


def test_guest_merge_with_open_attempts_on_both_sides(app, client, auth):
    with app.app_context():
        make_quiz("alpha")
        make_account(role="player")
    auth.login()
    client.post("/quizzes/alpha/start")  # the account's open attempt
    auth.logout()
    client.post("/guest", data={"display_name": "Guesty"})
    client.post("/quizzes/alpha/start")  # the guest's open attempt
    assert auth.login().status_code == 302
    with app.app_context():
        rows = db.session.execute(sa.select(Attempt.finished_at)).all()
        assert len(rows) == 2 and sum(r.finished_at is None for r in rows) == 1


def test_account_page_lists_my_attempts_only(app, client, auth):
    attempt_id = play_as_guest(app, client, "Someone")
    with app.app_context():
        make_account(role="player")
    other = app.test_client()
    other.post("/auth/login", data={"email": "admin@example.org", "password": PASSWORD})
    html = other.get("/auth/account").get_data(as_text=True)
    assert "No attempts yet" in html and f"/attempts/{attempt_id}/" not in html
    assert other.get(f"/attempts/{attempt_id}/results").status_code == 404


def test_parallel_wrong_passwords_cannot_pass_the_account_limit(app):
    import threading

    from werkzeug.serving import make_server

    with app.app_context():
        make_account()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    import urllib.error
    import urllib.parse
    import urllib.request

    body = urllib.parse.urlencode(
        {"email": "admin@example.org", "password": "wrong!wrong"}
    )
    url = f"http://127.0.0.1:{server.server_port}/auth/login"

    statuses = []

    def attempt():
        try:
            with urllib.request.urlopen(
                url, data=body.encode(), timeout=30
            ) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)

    workers = [threading.Thread(target=attempt) for _ in range(12)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    server.shutdown()
    assert statuses.count(200) == 5 and statuses.count(429) == 7


def test_json_sign_in_is_not_a_way_around_the_form(client, app):
    with app.app_context():
        make_account()
    response = client.post(
        "/auth/login", json={"email": "admin@example.org", "password": PASSWORD}
    )
    assert response.status_code == 200  # the form sees no fields: nothing happens
    assert current_name(client) is None


@pytest.mark.parametrize("url", ["/auth/login", "/auth/register", "/guest"])
def test_a_file_where_text_belongs_is_a_form_error_not_a_crash(client, url):
    import io

    data = {
        "email": (io.BytesIO(b"x"), "x.txt"),
        "display_name": (io.BytesIO(b"y"), "y"),
        "password": "whatever",
    }
    response = client.post(url, data=data, content_type="multipart/form-data")
    assert response.status_code in (200, 422)


def test_signing_in_clears_another_users_remember_cookie(app):
    with app.app_context():
        make_account("a@example.org", name="Ann", role="player")
        make_account("b@example.org", name="Bob", role="player")
    browser = app.test_client()
    browser.post(
        "/auth/login",
        data={"email": "b@example.org", "password": PASSWORD, "remember": "y"},
    )
    assert browser.get_cookie("remember_token") is not None
    browser.post("/auth/login", data={"email": "a@example.org", "password": PASSWORD})
    assert browser.get_cookie("remember_token") is None


def test_sign_out_deletes_the_remember_cookie(app, auth, client):
    with app.app_context():
        make_account()
    auth.login(remember="y")
    assert client.get_cookie("remember_token") is not None
    auth.logout()
    assert client.get_cookie("remember_token") is None


def test_composed_and_decomposed_passwords_are_the_same(client, app):
    import unicodedata

    password = "crème brûlée recipe"
    register(
        client,
        password=unicodedata.normalize("NFC", password),
        confirm=unicodedata.normalize("NFC", password),
    )
    client.post("/auth/logout")
    response = client.post(
        "/auth/login",
        data={
            "email": "reg@example.org",
            "password": unicodedata.normalize("NFD", password),
        },
    )
    assert response.status_code == 302


def test_registration_is_rate_limited_per_address(app):
    app.config["RATELIMIT_REGISTER"] = "3 per hour"
    for number in range(3):
        fresh = app.test_client()
        assert register(fresh, email=f"r{number}@example.org").status_code == 302
    assert register(app.test_client(), email="r9@example.org").status_code == 429


def test_racing_registrations_of_one_address_make_one_account(app):
    from quiz import accounts

    with app.app_context():
        accounts.create_account("One", "race@example.org", PASSWORD)
        # The second request checked before the first committed: the database decides.
        monkey = accounts.find_by_email
        accounts.find_by_email = lambda email: None
        try:
            with pytest.raises(accounts.EmailTaken):
                accounts.create_account("Two", "race@example.org", PASSWORD)
        finally:
            accounts.find_by_email = monkey


def test_only_views_that_declare_limits_check_them(app, client, monkeypatch):
    """No request pays for limits it does not have; the limited views keep theirs."""
    import flask_limiter

    checked = []
    check = flask_limiter.Limiter._check_request_limit

    def spy(self, callable_name=None, in_middleware=True):
        checked.append(callable_name)
        return check(self, callable_name, in_middleware)

    monkeypatch.setattr(flask_limiter.Limiter, "_check_request_limit", spy)
    with app.app_context():
        make_quiz("alpha")
    assert client.get("/").status_code == 200
    assert client.get("/leaderboard").status_code == 200
    assert checked == []
    app.config["RATELIMIT_REGISTER"] = "1 per hour"
    assert register(client, email="one@example.org").status_code == 302
    assert register(app.test_client(), email="two@example.org").status_code == 429
    assert len(checked) == 2 and all("register" in name for name in checked)


def test_limits_set_for_every_view_are_still_checked(app_config):
    """A deployment's default limits (configuration) apply to every view."""
    from quiz import create_app

    app = create_app({**app_config, "RATELIMIT_DEFAULT": "2 per hour"})
    with app.app_context():
        db.create_all()
        make_quiz("alpha")
    client = app.test_client()
    assert [client.get("/").status_code for _ in range(3)] == [200, 200, 429]

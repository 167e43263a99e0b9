"""CSRF on every POST, and no GET that changes anything: walked from ``app.url_map``."""

import re

from tests.factories import PASSWORD
from tests.test_access import client_as, url_for_rule


def test_every_post_without_a_csrf_token_is_refused(app, population):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    page = client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    signed_in = client.post(
        "/auth/login",
        data={"email": "admin@example.org", "password": PASSWORD, "csrf_token": token},
    )
    assert signed_in.status_code == 302
    posts = [rule for rule in app.url_map.iter_rules() if "POST" in rule.methods]
    assert len(posts) >= 15
    for rule in posts:
        url = url_for_rule(rule, population["player"])
        response = client.post(url, data={"action": "disable", "role": "admin"})
        assert response.status_code == 400, url
        assert "Form expired" in response.get_data(as_text=True)
    # Still signed in and nothing changed: the refused logout did not sign out.
    assert client.get("/admin/").status_code == 200


def test_no_get_route_changes_anything(app, population):
    """GET every route as an admin; the database is the same afterwards."""
    import sqlalchemy as sa

    from quiz.extensions import db

    def snapshot():
        # Every row of every table (downloads are logged in the audit log: a record of
        # reading, not a change).
        with app.app_context():
            return {
                table.name: sorted(
                    map(repr, db.session.execute(sa.select(table)).all())
                )
                for table in db.metadata.sorted_tables
                if table.name != "audit_event"
            }

    client = client_as(app, "admin")
    before = snapshot()
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods:
            client.get(url_for_rule(rule, population["player"])).close()
    assert snapshot() == before

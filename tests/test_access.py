"""Who may reach what: every route against every role, and CSRF on every POST.

Adding a route without an entry in ACCESS fails ``test_every_route_has_an_access_rule``.
"""

import re

import pytest

from tests.factories import PASSWORD

# public: anyone; signed_in: guests too; account: not guests; trainer: trainers and
# admins; admin: admins only.
ACCESS = {
    "static": "public",
    "play.index": "public",
    "play.guest": "public",
    "play.quiz": "public",
    "play.quiz_leaderboard": "public",
    "play.overall_leaderboard": "public",
    "play.start": "signed_in",
    "play.attempt": "signed_in",
    "play.question": "signed_in",
    "play.answer": "signed_in",
    "play.finish": "signed_in",
    "play.results": "signed_in",
    "auth.login": "public",
    "auth.register": "public",
    "auth.logout": "signed_in",
    "auth.account": "account",
    "auth.password": "account",
    "admin.index": "admin",
    "admin.quizzes": "admin",
    "admin.new_quiz": "admin",
    "admin.quiz": "admin",
    "admin.quiz_status": "admin",
    "admin.export_quiz": "admin",
    "admin.questions": "admin",
    "admin.new_question": "admin",
    "admin.question": "admin",
    "admin.question_status": "admin",
    "admin.preview_question": "admin",
    "admin.imports": "admin",
    "admin.review_import": "admin",
    "admin.apply_import": "admin",
    "admin.discard_import": "admin",
    "admin.users": "admin",
    "admin.user_role": "admin",
    "admin.user_status": "admin",
    "admin.user_password": "admin",
    "admin.audit_log": "admin",
    "play.my_cohorts": "signed_in",
    "play.join": "signed_in",
    "play.leave": "signed_in",
    "play.cohort_leaderboard": "signed_in",
    "trainer.index": "trainer",
    "trainer.new_cohort": "trainer",
    "trainer.cohort": "trainer",
    "trainer.new_join_code": "trainer",
    "trainer.remove_member": "trainer",
    "trainer.assign": "trainer",
    "trainer.unassign": "trainer",
    "trainer.results": "trainer",
    "trainer.member": "trainer",
    "trainer.attempt": "trainer",
    "trainer.export": "trainer",
    "trainer.statistics": "trainer",
    "trainer.statistics_csv": "trainer",
}

ROLES = ["anonymous", "guest", "player", "trainer", "admin"]
ARGS = {
    "cohort_id": 1,
    "assignment_id": 1,
    "code": "NOSUCHCODE",
    "kind": "attempts",
    "fmt": "csv",
    "slug": "alpha",
    "attempt_id": 1,
    "position": 1,
    "upload_id": 1,
    "filename": "css/app.css",
}


# Routes that need a query string to be reachable at all.
QUERIES = {
    "trainer.export": "?cohort=1",
    "trainer.statistics_csv": "?cohort=1&quiz=alpha",
}


def url_for_rule(rule, user_id: int) -> str:
    args = {name: ARGS.get(name, user_id) for name in rule.arguments}
    if rule.endpoint in (
        "admin.question",
        "admin.question_status",
        "admin.preview_question",
    ):
        args["slug"] = "alpha-single"
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(args[m.group(1)]), rule.rule)
    return path + QUERIES.get(rule.endpoint, "")


def test_every_route_has_an_access_rule(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - ACCESS.keys() == set(), "add the new routes to ACCESS"
    assert ACCESS.keys() - endpoints == set(), "remove routes that no longer exist"


def client_as(app, role: str):
    client = app.test_client()
    if role == "guest":
        client.post("/guest", data={"display_name": "A Guest"})
    elif role != "anonymous":
        client.post(
            "/auth/login", data={"email": f"{role}@example.org", "password": PASSWORD}
        )
    return client


def allowed(level: str, role: str) -> bool:
    return {
        "public": True,
        "signed_in": role != "anonymous",
        "account": role not in ("anonymous", "guest"),
        "trainer": role in ("trainer", "admin"),
        "admin": role == "admin",
    }[level]


@pytest.mark.parametrize("role", ROLES)
def test_route_table_by_role(app, population, role):
    client = client_as(app, role)
    target_user = population["player"]
    # Sign-out last: it ends the session the other requests need.
    rules = sorted(app.url_map.iter_rules(), key=lambda r: r.endpoint == "auth.logout")
    for rule in rules:
        level = ACCESS[rule.endpoint]
        method = "GET" if "GET" in rule.methods else "POST"
        url = url_for_rule(rule, target_user)
        response = client.open(url, method=method)
        response.close()  # ends a streamed download like a browser would
        location = response.headers.get("Location", "")
        to_sign_in = response.status_code == 302 and location.startswith("/auth/login")
        where = f"{role} {method} {url} -> {response.status_code} {location}"
        if allowed(level, role):
            assert response.status_code != 403 and not to_sign_in, where
            assert response.status_code < 500, where
        elif role in ("anonymous", "guest") and level in (
            "signed_in",
            "trainer",
            "admin",
        ):
            assert to_sign_in, where
        elif role == "guest" and level == "account":
            assert response.status_code == 302 and "/auth/register" in location, where
        elif role == "anonymous":
            assert to_sign_in, where
        else:
            assert response.status_code == 403, where
            assert "You do not have permission" in response.get_data(as_text=True)

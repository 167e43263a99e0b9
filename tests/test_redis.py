"""Sign-in limits shared through Redis (skipped without QUIZ_TEST_REDIS_URL)."""

import os
import uuid

import pytest

from quiz import create_app
from tests.factories import make_account

REDIS_URL = os.environ.get("QUIZ_TEST_REDIS_URL", "")

pytestmark = pytest.mark.skipif(
    not REDIS_URL.startswith("redis"),
    reason="Redis test: set QUIZ_TEST_REDIS_URL=redis://127.0.0.1:6379/15 to run",
)


def test_two_app_servers_count_failed_sign_ins_together(app_config, app):
    # Each run gets its own key prefix, so runs never see each other's counts.
    shared = {
        **app_config,
        "RATELIMIT_STORAGE_URI": REDIS_URL,
        "RATELIMIT_KEY_PREFIX": f"quiz-test-{uuid.uuid4().hex}",
    }
    first, second = create_app(shared), create_app(shared)
    with first.app_context():
        make_account()
    wrong = {"email": "admin@example.org", "password": "not the password"}
    for server in [first, second, first, second, first]:
        assert server.test_client().post("/auth/login", data=wrong).status_code == 200
    assert second.test_client().post("/auth/login", data=wrong).status_code == 429

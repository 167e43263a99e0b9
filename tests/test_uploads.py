"""Uploads: size caps, file types and malformed files import nothing."""

import pytest
import sqlalchemy as sa

from quiz.extensions import db
from quiz.models import BankUpload, Quiz
from tests.factories import bank_yaml
from tests.factories import upload_bank as upload


def count(app, model):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


@pytest.mark.parametrize(
    ("content", "filename", "message"),
    [
        (
            bank_yaml("gamma").replace("type: single", "type: essay").encode(),
            "g.yaml",
            "unknown type",
        ),
        (b"id: [broken", "g.yaml", "invalid YAML"),
        (b"id: x\n", "bank.txt", "Upload a .yaml or .yml bank file."),
        (b"# " + b"x" * 600_000, "big.yaml", "the limit is 524,288"),
    ],
)
def test_bad_uploads_list_problems_and_import_nothing(
    admin, app, content, filename, message
):
    response = upload(admin, content, filename)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert count(app, Quiz) == 0 and count(app, BankUpload) == 0


def test_upload_above_the_request_limit_gets_413(admin, app):
    response = upload(admin, b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1))
    assert response.status_code == 413
    assert "The upload is too large." in response.get_data(as_text=True)

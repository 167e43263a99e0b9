"""Extension objects, created unbound and initialised in ``create_app``."""

import sqlalchemy as sa
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
csrf = CSRFProtect()
migrate = Migrate()
# No default limits: specific routes (sign-in) say what they limit and by which key.
limiter = Limiter(key_func=get_remote_address)


def execute_core(statement, params: dict | None = None) -> sa.CursorResult:
    """Run a Core statement on the session's connection, inside its transaction.

    For the answer's insert and the marking rules, inside a form's transaction: it
    skips the ORM's statement and result handling (and autoflush, so flush pending
    objects first). Pages that only read use ``quiz.reads.HotRead`` instead (this
    would open the session's connection outside autocommit on PostgreSQL).
    """
    return db.session.connection().execute(statement, params)

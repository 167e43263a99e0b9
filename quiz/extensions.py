"""Extension objects, created unbound and initialised in ``create_app``."""

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


class ViewLimiter(Limiter):
    """Flask-Limiter for limits declared on views only.

    The app sets no default, application-wide or blueprint limits: the few views that
    are limited (signing in, registering, joining as a guest, changing a password)
    say so with ``limiter.limit``, whose wrapper checks the limits when the view is
    called. The extension's own check before every request would only find that
    nothing applies, at some 60 µs a request (a fifth of a catalogue page), so it
    is skipped.
    """

    def _check_request_limit(self, callable_name=None, in_middleware=True) -> None:
        if in_middleware:
            return
        super()._check_request_limit(callable_name, in_middleware)


limiter = ViewLimiter(key_func=get_remote_address)

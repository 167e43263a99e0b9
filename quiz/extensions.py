"""Extension objects, created unbound and initialised in ``create_app``."""

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.constants import ConfigVars
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from .csrf_tokens import RememberingCSRFProtect

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
csrf = RememberingCSRFProtect()
migrate = Migrate()


class ViewLimiter(Limiter):
    """Flask-Limiter, with its check before every request only where it can apply.

    The app declares its limits on the few views that have them (registering,
    joining as a guest, changing a password) with ``limiter.limit``, whose wrapper
    checks them when the view is called; failed sign-ins are counted by
    ``quiz.throttle``. The extension's own check before every request would only
    find that nothing applies, at some 60 µs a request (a fifth of a catalogue
    page). It still runs while the shared storage is down (that is where the
    extension retries it) and for a deployment that sets default, application-wide
    or meta limits in its configuration.
    """

    def init_app(self, app) -> None:
        super().init_app(app)
        app_wide = (ConfigVars.DEFAULT_LIMITS, ConfigVars.APPLICATION_LIMITS)
        app.extensions[WIDE_LIMITS] = any(
            app.config.get(name) for name in (*app_wide, ConfigVars.META_LIMITS)
        )

    def _check_request_limit(self, callable_name=None, in_middleware=True) -> None:
        if (
            in_middleware
            and not self._storage_dead
            and not current_app.extensions.get(WIDE_LIMITS, True)
        ):
            return
        super()._check_request_limit(callable_name, in_middleware)


WIDE_LIMITS = "quiz.wide_rate_limits"
limiter = ViewLimiter(key_func=get_remote_address)

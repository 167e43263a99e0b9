"""The Flask class of the app: Flask, minus work it repeats on every request.

URL building, memoised: a page's layout, its pagination and its cards build a dozen
or more URLs per view (navigation, static files, page links), and werkzeug's builder
costs more than rendering the rest of the page. A built URL depends only on the endpoint, its
values and, within a request, on the application root and the request method (the
method picks among rules of one endpoint), so those make the key. Only whole numbers
and short texts are remembered: anything else (external URLs, anchors, URL defaults,
other values, host or subdomain matching) is built afresh, so visitors cannot fill
the memo with long request-chosen text. At ``MAX_URLS`` entries it starts again.

Session cookies: Flask builds the cookie's signing serializer twice per request
(to read the cookie and to write it), and building one signs a test value. The app
keeps one per secret key instead. Checking a cookie's signature and decoding its
JSON cost more than the rest of an empty request, and a browser sends the same
cookie with every page: a cookie that passed the check is remembered (until the keys
change, up to ``MAX_SESSIONS`` of them), with what it holds and when it was signed,
so that later requests only check its age. Only cookies whose values are plain text,
numbers and flags are remembered (one holding flashed messages is read afresh), so
no request can change another's copy.

Hooks: Flask asks, for every hook, view and teardown function of every request,
whether it is a coroutine function (``ensure_sync``); the answer for a function
never changes, so it is remembered.

Routing: werkzeug answers 405 when a rule of another method matches the path, even
if that rule would refuse the path's values too (a number beyond the database's
integers, say): ``POST /attempts/<a 12-digit number>/questions/1`` would say that
GET is allowed at an address where nothing is. Such a 405 becomes the 404 it is,
and a 405 names only the methods that do take the address.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit
from weakref import WeakKeyDictionary

from flask import Flask, Request, has_request_context, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

MAX_URLS = 4096
MAX_SESSIONS = 4096
MAX_FUNCTIONS = 1024
_PLAIN = frozenset({str, int, float, bool, type(None)})
MAX_REMEMBERED_TEXT = 100  # longer values (a "next" path, say) are built afresh


def _rememberable(value: object) -> bool:
    """Ids, page numbers and short texts: a key that cannot mix up ``1``, ``1.0``
    and ``True`` (equal as keys, different in a URL) nor hold long request text."""
    kind = type(value)
    return kind is int or (kind is str and len(value) <= MAX_REMEMBERED_TEXT)


class SignedCookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the serializer built once per key and
    the cookies it passed remembered."""

    def __init__(self) -> None:
        # (keys, their serializer, the cookies it passed): replaced as one, so a
        # cookie checked under old keys is never remembered under new ones.
        # A passed cookie maps to (when it was signed, in whole seconds; its data).
        self._current: tuple[tuple, URLSafeTimedSerializer | None, dict] | None = None

    def _for_keys(self, app: Flask) -> tuple[URLSafeTimedSerializer | None, dict]:
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        current = self._current
        if current is None or current[0] != keys:
            current = (keys, super().get_signing_serializer(app), {})
            self._current = current
        return current[1], current[2]

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        return self._for_keys(app)[0]

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        serializer, passed_cookies = self._for_keys(app)
        cookie = request.cookies.get(self.get_cookie_name(app))
        if serializer is None or not cookie:
            return super().open_session(app, request)
        max_age = int(app.permanent_session_lifetime.total_seconds())
        passed = passed_cookies.get(cookie)
        if passed is None:
            try:
                data, signed = serializer.loads(
                    cookie, max_age=max_age, return_timestamp=True
                )
            except BadSignature:  # forged, from other keys, or expired
                return self.session_class()
            if all(type(value) in _PLAIN for value in data.values()):
                if len(passed_cookies) >= MAX_SESSIONS:
                    passed_cookies.clear()
                passed_cookies[cookie] = (int(signed.timestamp()), data)
            return self.session_class(data)
        signed_at, data = passed
        age = int(time.time()) - signed_at
        if age > max_age or age < 0:  # as itsdangerous counts an expired signature
            return self.session_class()
        return self.session_class(data)  # a copy: the request may change it


class QuizFlask(Flask):
    """Flask, with ``url_for`` remembering the relative URLs it built, session
    cookies checked once, hooks known to be plain functions, and a 405 only where
    another method's rule takes the address."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._built_urls: dict[tuple, str] = {}
        # Weak: a function made for one request (after_this_request) is not kept.
        self._plain_functions: WeakKeyDictionary[Callable, bool] = WeakKeyDictionary()
        self.session_interface = SignedCookieSessions()

    def ensure_sync(self, func: Callable) -> Callable:
        try:
            if self._plain_functions.get(func):
                return func
        except TypeError:  # not hashable or not weakly referable: asked every time
            return super().ensure_sync(func)
        sync = super().ensure_sync(func)
        if sync is func and len(self._plain_functions) < MAX_FUNCTIONS:
            self._plain_functions[func] = True
        return sync

    def raise_routing_exception(self, request: Request) -> NoReturn:
        error = request.routing_exception
        if isinstance(error, MethodNotAllowed):
            offered = error.valid_methods or ()
            served = [m for m in offered if self._serves(request, m)]
            if not served:
                raise NotFound() from None
            if len(served) < len(offered):
                raise MethodNotAllowed(valid_methods=served) from None
        super().raise_routing_exception(request)

    def _serves(self, request: Request, method: str) -> bool:
        """Whether a rule for ``method`` takes the request's path, values included;
        after a redirect to the canonical address (merged or added slashes), the
        address it redirects to."""
        adapter = self.create_url_adapter(request)
        try:
            adapter.match(method=method)
        except RequestRedirect as redirect:
            target = unquote(urlsplit(redirect.new_url).path)
            root = adapter.script_name.rstrip("/")
            try:
                adapter.match(path_info=target.removeprefix(root), method=method)
            except RequestRedirect:
                return True  # redirected again: left to the redirect
            except HTTPException:
                return False
        except HTTPException:
            return False
        return True

    def url_for(
        self,
        endpoint: str,
        *,
        _anchor: str | None = None,
        _method: str | None = None,
        _scheme: str | None = None,
        _external: bool | None = None,
        **values: Any,
    ) -> str:
        if (
            _anchor is None
            and _method is None
            and _scheme is None
            and not _external
            and endpoint[:1] != "."
            and not self.url_default_functions
            and not self.url_map.host_matching
            and not self.subdomain_matching
            and all(_rememberable(value) for value in values.values())
            and has_request_context()
        ):
            environ = request.environ
            key = (
                environ.get("SCRIPT_NAME", ""),
                environ.get("REQUEST_METHOD"),
                endpoint,
                *values.items(),
            )
            url = self._built_urls.get(key)
            if url is None:
                url = super().url_for(endpoint, **values)
                if len(self._built_urls) >= MAX_URLS:
                    self._built_urls.clear()
                self._built_urls[key] = url
            return url
        return super().url_for(
            endpoint,
            _anchor=_anchor,
            _method=_method,
            _scheme=_scheme,
            _external=_external,
            **values,
        )

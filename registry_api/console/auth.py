"""Console sessions: a signed cookie naming an API key by id, re-checked against the key cache on every request.

The cookie holds the key's id and the session's CSRF token, signed with the console secret
(never the manifest signing key) and timestamped: it expires after `console_session_ttl_s`, and
because the key is looked up by id on every request it stops working within `keys_cache_ttl_s`
of a revocation. The API key itself never goes into the cookie.
"""

from __future__ import annotations

import dataclasses
import hmac
import os
import secrets
from pathlib import Path

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from edgeloop.errors import ConfigError
from registry_api.core.config import RegistrySettings
from registry_api.core.security import Role
from registry_api.errors import Forbidden, RateLimited, Unauthenticated
from registry_api.state import Principal, Registry

SESSION_COOKIE = "edgeloop_console"
LOGIN_COOKIE = "edgeloop_console_login"  # the login form's CSRF token, before there is a session
COOKIE_PATH = "/console"
_SALT = "edgeloop.console.session"

# Who may look and who may act. Devices are refused outright: their keys live on phones.
LOOK = frozenset({Role.reader, Role.qa, Role.publisher})
ACT = frozenset({Role.publisher})


@dataclasses.dataclass(frozen=True)
class ConsoleUser:
    """The logged-in key and the CSRF token its forms must carry."""

    principal: Principal
    csrf: str

    @property
    def can_act(self) -> bool:
        return self.principal.role in ACT


def load_secret(settings: RegistrySettings) -> bytes:
    """The cookie secret: from settings, else a file beside the registry database (generated once, mode 0600)."""
    if settings.console_secret:
        if len(settings.console_secret) < 32:
            raise ConfigError(
                f"EDGELOOP_REGISTRY_CONSOLE_SECRET has {len(settings.console_secret)} characters; use at least 32 "
                "random ones (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        return settings.console_secret.encode("utf-8")
    return _secret_file(settings.default_console_secret_path)


def _secret_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two workers starting at once must agree on one secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    secret = secrets.token_urlsafe(48).encode("ascii")
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return secret


class Sessions:
    """Issues and checks console session cookies for one app."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.ttl_s = registry.settings.console_session_ttl_s
        self._signer = URLSafeTimedSerializer(load_secret(registry.settings), salt=_SALT)

    def log_in(self, token: str) -> tuple[Principal, str]:
        """Check an API key typed into the login form; the cookie value of its new session."""
        principal = self.registry.keys.authenticate(token.strip())
        if principal.role not in LOOK:
            raise Forbidden(
                f"a {principal.role.value} key cannot log in to the console; use a reader, qa or publisher key"
            )
        value = self._signer.dumps({"k": principal.key_id, "c": secrets.token_urlsafe(32)})
        return principal, value

    def user(self, request: Request) -> ConsoleUser:
        """The session's user, its key re-checked (revoked within `keys_cache_ttl_s`) and rate limited."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise Unauthenticated("not logged in; log in with an API key")
        try:
            data = self._signer.loads(cookie, max_age=self.ttl_s)
        except BadSignature:  # also SignatureExpired
            raise Unauthenticated("the console session expired or is not valid; log in again") from None
        if not isinstance(data, dict) or not isinstance(data.get("k"), str) or not isinstance(data.get("c"), str):
            raise Unauthenticated("the console session is not valid; log in again")
        principal = self.registry.keys.by_id(data["k"])
        if principal.role not in LOOK:
            raise Forbidden(f"a {principal.role.value} key cannot use the console")
        request.scope.setdefault("state", {})["key_id"] = principal.key_id  # for the access log
        wait = self.registry.limiter.take(principal.key_id, principal.rate_per_s, self.registry.settings.burst_s)
        if wait > 0:
            raise RateLimited(f"rate limit of {principal.rate_per_s:g} requests/s exceeded", wait)
        return ConsoleUser(principal, data["c"])


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """HttpOnly, SameSite=Strict (a cross-site request carries none), Secure when the page came over https."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def check_origin(request: Request) -> None:
    """Refuse a state-changing request sent by another site (Origin, or Sec-Fetch-Site where Origin is absent)."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    if origin is not None:
        if origin != own:
            raise Forbidden(f"cross-site request refused: Origin {origin[:100]!r} is not {own!r}")
        return
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise Forbidden(f"cross-site request refused (Sec-Fetch-Site: {site[:40]})")


def check_csrf(expected: str | None, sent: str | None) -> None:
    """The form's token must equal the session's (or, at login, the login cookie's)."""
    if not expected or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise Forbidden("the form's CSRF token is missing or stale; reload the page and submit again")

"""The console's routes: login, the pages, the alias actions and the vendored assets.

Errors of the registry's hierarchy become HTML here (the route boundary): a GET without a
session goes to the login page, everything else gets an error page with the API's status.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Callable, Coroutine
from importlib import resources
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgeloop.errors import EdgeloopError
from registry_api import crud
from registry_api.api.problems import describe_errors
from registry_api.console import auth, data, field
from registry_api.console.filters import FILTERS
from registry_api.errors import Forbidden, InvalidRequest, NotFoundError, Unauthenticated
from registry_api.models import ALIAS_PATTERN, NAME_PATTERN, AliasUpdate, TargetingUpdate
from registry_api.state import Registry

log = logging.getLogger(__name__)

ModelName = Annotated[str, Path(pattern=NAME_PATTERN)]
AliasName = Annotated[str, Path(pattern=ALIAS_PATTERN)]
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]

# Pages are per user and private; scripts and styles only from the package itself (no inline script, no CDN).
_HEADERS = {
    "Cache-Control": "no-store",
    "Vary": "Cookie",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}
VERSIONS_SHOWN = 50  # a model page lists this many versions unless asked for all (?versions=all)
_STATIC = {  # the only files served: name -> media type
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "chart.umd.min.js": "text/javascript; charset=utf-8",
}


class AliasForm(BaseModel):
    """The "point an alias" form."""

    model_config = ConfigDict(extra="ignore")

    alias: str = Field(pattern=ALIAS_PATTERN)
    version: int = Field(ge=1, le=2**31 - 1)
    rollout_percent: int = Field(ge=0, le=100)
    reason: str = Field(min_length=1, max_length=1000)


class RollbackForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    reason: str = Field(min_length=1, max_length=1000)


def _status_of(exc: Exception) -> int:
    from registry_api.main import status_of  # main builds the console: imported when an error is shown

    return status_of(exc)


class Console:
    """One app's console: its templates, its session signer and the registry it reads."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.sessions = auth.Sessions(registry)
        self.env = Environment(
            loader=PackageLoader("registry_api.console", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
        )
        self.env.filters.update(FILTERS)
        self._assets: dict[str, tuple[bytes, str]] = {}

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(request=request, **context)
        return HTMLResponse(html, status_code=status, headers=_HEADERS)

    def error(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, Unauthenticated) and request.method == "GET":
            return RedirectResponse(f"/console/login?next={quote(request.url.path)}", status_code=303)
        status = _status_of(exc)
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return self.page(request, "error.html", status=status, message=str(exc), user=None)

    def asset(self, name: str) -> tuple[bytes, str]:
        if name not in self._assets:
            folder = resources.files("registry_api.console") / "static"
            path = folder / "vendor" / name if name.startswith("chart.") else folder / name
            body = path.read_bytes()
            self._assets[name] = (body, hashlib.sha256(body).hexdigest()[:16])
        return self._assets[name]

    async def warehouse(self, fn: Callable[..., Any], *args: Any) -> tuple[Any, str | None]:
        """`fn(warehouse, …)` on the telemetry writer's thread, read-only; (None, why) when it cannot be read."""
        try:
            return await asyncio.wrap_future(self.registry.writer.read(lambda wh: fn(wh, *args))), None
        except EdgeloopError as exc:  # no file yet, another process writing it, BigQuery unreachable: said on the page
            return None, str(exc)

    def read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        """Run `fn(session, …)` on a read-only session in the thread pool."""

        def load() -> Any:
            # The read-only factory: under SQLite WAL a page never holds the write lock a publish needs.
            with self.registry.manifests.sessions() as session:
                return fn(session, *args, **kwargs)

        return run_in_threadpool(load)


def _safe_next(value: str | None) -> str:
    """Only a console path: a `next` pointing elsewhere would make the login form an open redirect."""
    if value and value.startswith("/console/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console/"


def _form(model: type[BaseModel], form: dict[str, Any]) -> Any:
    try:
        return model.model_validate(form)
    except ValidationError as exc:
        raise InvalidRequest(f"{describe_errors(exc.errors())}; correct the form and submit again") from None


def build_router(registry: Registry) -> APIRouter:
    """The console router for one app (built by `create_app`; nothing at import)."""
    console = Console(registry)

    class ConsoleRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def route(request: Request) -> Response:
                try:
                    return await handler(request)
                except EdgeloopError as exc:
                    return console.error(request, exc)

            return route

    router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

    async def form_of(request: Request) -> dict[str, Any]:
        async with request.form(max_files=0, max_fields=20) as form:
            return {k: v for k, v in form.items() if isinstance(v, str)}

    async def acting_user(request: Request, form: dict[str, Any]) -> auth.ConsoleUser:
        auth.check_origin(request)
        user = console.sessions.user(request)
        auth.check_csrf(user.csrf, form.get("csrf"))
        if not user.can_act:
            raise Forbidden(
                f"a {user.principal.role.value} key may look but not act; log in with a publisher key to change aliases"
            )
        return user

    @router.get("/login")
    async def login_page(request: Request, next: str | None = None) -> Response:
        token = secrets.token_urlsafe(32)
        response = console.page(request, "login.html", user=None, csrf=token, next=_safe_next(next), message=None)
        auth.set_cookie(request, response, auth.LOGIN_COOKIE, token, max_age=3600)
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await form_of(request)
        auth.check_origin(request)
        auth.check_csrf(request.cookies.get(auth.LOGIN_COOKIE), form.get("csrf"))
        key = str(form.get("key", ""))
        if not key.strip():
            raise Unauthenticated("type an API key (`edgeloop keys create --name NAME --role reader`)")
        try:
            _, cookie = console.sessions.log_in(key)
        except (Unauthenticated, Forbidden) as exc:  # the form again, saying why, to try another key
            token = secrets.token_urlsafe(32)
            again = console.page(
                request,
                "login.html",
                _status_of(exc),
                user=None,
                csrf=token,
                next=_safe_next(form.get("next")),
                message=str(exc),
            )
            auth.set_cookie(request, again, auth.LOGIN_COOKIE, token, max_age=3600)
            return again
        response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
        auth.set_cookie(request, response, auth.SESSION_COOKIE, cookie, max_age=console.sessions.ttl_s)
        response.delete_cookie(auth.LOGIN_COOKIE, path=auth.COOKIE_PATH)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        form = await form_of(request)
        auth.check_origin(request)
        user = console.sessions.user(request)
        auth.check_csrf(user.csrf, form.get("csrf"))
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(auth.SESSION_COOKIE, path=auth.COOKIE_PATH)
        return response

    @router.get("/")
    async def overview(request: Request) -> Response:
        user = console.sessions.user(request)
        models = await console.read(data.overview)
        verdicts, _ = await console.warehouse(field.latest_decisions) if models else ({}, None)
        return console.page(request, "overview.html", user=user, models=models, verdicts=verdicts or {})

    @router.get("/models/{name}")
    async def model(
        request: Request, name: ModelName, done: int | None = None, versions: Literal["all"] | None = None
    ) -> Response:
        user = console.sessions.user(request)
        page = await console.read(data.model_page, name, None if versions == "all" else VERSIONS_SHOWN)
        notice = next((e for e in page.audit if e.id == done), None) if done else None
        return console.page(request, "model.html", user=user, page=page, notice=notice)

    @router.get("/models/{name}/versions/{number}")
    async def version(request: Request, name: ModelName, number: VersionNumber) -> Response:
        user = console.sessions.user(request)
        page = await console.read(data.version_page, name, number, devices=registry.settings.benchmark_devices)
        charts = {"latency": [r.model_dump() for r in page.latency], "recall": [r.model_dump() for r in page.recall]}
        return console.page(request, "version.html", user=user, page=page, charts=charts)

    @router.get("/models/{name}/field")
    async def field_health(request: Request, name: ModelName) -> Response:
        user = console.sessions.user(request)
        context = await console.read(data.field_context, name)  # 404 for an unknown model
        today = dt.datetime.now(dt.UTC).date()
        health, problem = await console.warehouse(field.field_page, name, today, context.datasets)
        rows = [
            {"day": r.day.isoformat(), "line": f"v{r.version} · {r.device_class}", "p95_ms": r.p95_ms}
            for r in (health.rows if health else [])
        ]
        return console.page(
            request,
            "field.html",
            user=user,
            name=name,
            health=health,
            problem=problem,
            aliases=context.aliases,
            datasets=context.datasets,
            rows=rows,
            min_labelled=field.PSI_MIN_LABELLED,
        )

    @router.get("/training")
    async def training(request: Request, run: Annotated[str | None, Query(max_length=200)] = None) -> Response:
        user = console.sessions.user(request)
        page, problem = await console.warehouse(field.training_page, run)
        charts = (
            {
                "epochs": [{"step": f"{e.phase} {e.epoch}", **e.model_dump()} for e in page.epochs],
                "recall": [r.model_dump() for r in page.recall],
            }
            if page
            else {}
        )
        return console.page(request, "training.html", user=user, page=page, problem=problem, charts=charts)

    @router.post("/models/{name}/alias")
    async def set_alias(request: Request, name: ModelName) -> Response:
        form = await form_of(request)
        user = await acting_user(request, form)
        action: AliasForm = _form(AliasForm, form)

        def write() -> int:
            with registry.sessions.begin() as session:
                crud.require_model(session, name)
                current = next((a for a in crud.list_aliases(session, name) if a.name == action.alias), None)
                # The console moves the version and the rollout; targeting and budget stay as they were.
                update = AliasUpdate(
                    version=action.version,
                    rollout_percent=action.rollout_percent,
                    reason=action.reason,
                    targeting=TargetingUpdate.model_validate(current.targeting or {}) if current else TargetingUpdate(),
                    latency_budget_ms=current.latency_budget_ms if current else None,
                )
                crud.set_alias(session, name, action.alias, update, user.principal.name)
                entry_id = _latest_entry(session, name)
            registry.manifests.invalidate(name)
            return entry_id

        entry = await run_in_threadpool(write)
        return RedirectResponse(f"/console/models/{quote(name)}?done={entry}#audit", status_code=303)

    @router.post("/models/{name}/aliases/{alias}/rollback")
    async def rollback(request: Request, name: ModelName, alias: AliasName) -> Response:
        form = await form_of(request)
        user = await acting_user(request, form)
        action: RollbackForm = _form(RollbackForm, form)

        def write() -> int:
            with registry.sessions.begin() as session:
                crud.rollback_alias(session, name, alias, user.principal.name, action.reason)
                entry_id = _latest_entry(session, name)
            registry.manifests.invalidate(name)
            return entry_id

        entry = await run_in_threadpool(write)
        return RedirectResponse(f"/console/models/{quote(name)}?done={entry}#audit", status_code=303)

    @router.get("/static/{file}")
    async def static(request: Request, file: str) -> Response:
        if file not in _STATIC:
            raise NotFoundError(f"no console asset {file[:60]!r}")
        body, etag = console.asset(file)
        headers = {"ETag": f'"{etag}"', "Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
        if request.headers.get("if-none-match") == f'"{etag}"':
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=_STATIC[file], headers=headers)

    return router


def _latest_entry(session: Any, name: str) -> int:
    entries = crud.audit_log(session, name, 1, None)
    return entries[0].id if entries else 0

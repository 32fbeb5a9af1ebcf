"""`edgeloop models|versions|alias set|rollback|audit`: what the console does, from a terminal, over HTTP."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

Registry = Annotated[str, typer.Option(envvar="EDGELOOP_REGISTRY_URL", help="Registry base URL.")]
ApiKey = Annotated[str, typer.Option(envvar="EDGELOOP_API_KEY", help="A reader key to look; a publisher key to act.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of a table.")]
Reason = Annotated[str, typer.Option(help="Why, for the audit log (required).")]
DEFAULT_URL = "http://127.0.0.1:8000"

alias_app = typer.Typer(help="Move an alias (a publisher key).", no_args_is_help=True)


def _show(rows: list[dict[str, Any]], columns: list[tuple[str, str]], title: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for _, header in columns:
        table.add_column(header)
    for row in rows:
        table.add_row(*("" if row.get(key) is None else str(row.get(key)) for key, _ in columns))
    Console().print(table)


def models(registry: Registry = DEFAULT_URL, api_key: ApiKey = "", as_json: AsJson = False) -> None:
    """Every model: latest version, number of versions, where its aliases point."""
    from registry_api.client import RegistryClient

    with RegistryClient(registry, api_key) as client:
        rows = client.models()
    for row in rows:
        row["where"] = ", ".join(f"{a}=v{v}" for a, v in sorted(row.get("aliases", {}).items()))
    columns = [("name", "model"), ("latest_version", "latest"), ("versions", "versions"), ("where", "aliases")]
    _show(rows, columns, "models", as_json)


def versions(
    model: Annotated[str, typer.Argument(help="Model name.")],
    registry: Registry = DEFAULT_URL,
    api_key: ApiKey = "",
    as_json: AsJson = False,
) -> None:
    """A model's versions, newest first."""
    from registry_api.client import RegistryClient

    with RegistryClient(registry, api_key) as client:
        rows = list(reversed(client.versions(model)))
    for row in rows:
        variants = row.get("variants", [])
        row["publishable"] = f"{sum(1 for v in variants if v.get('publishable'))}/{len(variants)}"
    columns = [
        ("version", "version"),
        ("created_at", "published"),
        ("created_by", "by"),
        ("run_version", "run"),
        ("gate_verdict", "gate"),
        ("publishable", "variants"),
    ]
    _show(rows, columns, f"versions of {model}", as_json)


def audit(
    model: Annotated[str, typer.Argument(help="Model name.")],
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    registry: Registry = DEFAULT_URL,
    api_key: ApiKey = "",
    as_json: AsJson = False,
) -> None:
    """A model's audit log, newest first: who moved what, when and why."""
    from registry_api.client import RegistryClient

    with RegistryClient(registry, api_key) as client:
        rows = client.audit(model, limit)
    columns = [
        ("id", "#"),
        ("at", "when"),
        ("actor", "who"),
        ("action", "what"),
        ("alias", "alias"),
        ("from_version", "from"),
        ("to_version", "to"),
        ("to_rollout", "rollout %"),
        ("reason", "reason"),
    ]
    _show(rows, columns, f"audit log of {model}", as_json)


@alias_app.command("set")
def alias_set(
    model: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Argument(help="Alias, e.g. canary or production.")],
    version: Annotated[int, typer.Argument(help="Version number to point it at.", min=1)],
    reason: Reason,
    rollout: Annotated[int, typer.Option(help="Percent of devices that get it.", min=0, max=100)] = 100,
    registry: Registry = DEFAULT_URL,
    api_key: ApiKey = "",
    as_json: AsJson = False,
) -> None:
    """Point an alias at a version for a share of devices (the rest keep the previous version)."""
    from registry_api.client import RegistryClient

    with RegistryClient(registry, api_key) as client:
        state = client.set_alias(model, alias, version, rollout_percent=rollout, reason=reason)
    _said(state, as_json)


def rollback(
    model: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Argument(help="Alias to roll back.")],
    reason: Reason,
    registry: Registry = DEFAULT_URL,
    api_key: ApiKey = "",
    as_json: AsJson = False,
) -> None:
    """Move an alias back to its previous version, for every device."""
    from registry_api.client import RegistryClient

    with RegistryClient(registry, api_key) as client:
        state = client.rollback(model, alias, reason=reason)
    _said(state, as_json)


def _said(state: Any, as_json: bool) -> None:
    import dataclasses

    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(state)))
    else:
        previous = f" (others: v{state.previous_version})" if state.previous_version else ""
        typer.echo(f"{state.alias} -> v{state.version} at {state.rollout_percent} %{previous}")


def register(app: typer.Typer) -> None:
    app.command("models")(models)
    app.command("versions")(versions)
    app.add_typer(alias_app, name="alias")
    app.command("rollback")(rollback)
    app.command("audit")(audit)

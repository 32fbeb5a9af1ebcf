"""Schemathesis against the app's own OpenAPI, with auth: all checks, positive and negative data.

Every operation runs with a publisher key and with a device key (a device may use only a few
routes; every other one must refuse it in a documented way, whatever the input). No 5xx, no
answer outside the schema, no answer bigger than `MAX_ANSWER` (errors never echo input at length).

Driven through Hypothesis directly (one strategy per operation and mode) rather than
schemathesis' pytest loader, which does not work with this pytest version.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from registry_api import create_app
from registry_api.testing import create_keys, make_package, multipart

pytestmark = pytest.mark.slow

ROLES = ("publisher", "device")
BEYOND_SCHEMA = {("post", "/v1/models/{name}/versions"), ("post", "/v1/telemetry"), ("post", "/v1/benchmarks")}
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 6}
MAX_ANSWER = 16 * 1024  # the largest documented answer here is a few KiB (manifest, version list)


def _runner(operation: Any, mode: GenerationMode, count: int, headers: dict[str, str], excluded: list[Any]) -> Any:
    @given(case=operation.as_strategy(mode))
    @settings(max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        response = case.call_and_validate(headers=headers, excluded_checks=excluded)
        if case.method.upper() != "GET" or case.path != "/v1/artifacts/{sha256}":  # a model file may be big
            assert len(response.content) <= MAX_ANSWER, f"{len(response.content)}-byte answer: {response.text[:200]}"

    return run


def test_api_conforms_to_its_openapi(registry_env: Path, tmp_path: Path) -> None:
    tokens = create_keys(publisher=1e6, device=1e6, reader=1e6)
    app = create_app()
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {tokens['publisher']}"}
        # Something to find: a model with a version and an alias.
        client.post("/v1/models/shelf-products/versions", files=multipart(make_package(tmp_path / "pkg")), headers=auth)
        client.put("/v1/models/shelf-products/aliases/production", json={"version": 1}, headers=auth)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        # The API refuses NUL in every JSON string (400, documented in its description): PostgreSQL cannot
        # store one. JSON Schema has no word for that, so schema-valid data is generated without it.
        schema.config.generation.update(allow_x00=False)
        started = time.monotonic()
        failures: list[str] = []
        timings: dict[str, float] = {}
        operations = 0
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1
            for role in ROLES:
                headers = {"Authorization": f"Bearer {tokens[role]}"}
                # Beyond what a schema can say, so schema-valid data is rightly refused with 422 there: a
                # package's validity (hashes matching bytes, gate verdicts), and times bounded around receipt
                # (telemetry's event_time, a benchmark's measured_at). Every other check still applies.
                excluded = [positive_data_acceptance] if (operation.method, operation.path) in BEYOND_SCHEMA else []
                for mode, count in EXAMPLES.items():
                    run = _runner(operation, mode, count, headers, excluded)
                    label = f"{operation.method.upper()} {operation.path} [{mode}, {role} key]"
                    t0 = time.monotonic()
                    try:
                        run()
                    except Unsatisfiable:
                        continue  # nothing to send wrong (no parameters, no body): no negative cases exist
                    except (
                        Exception,
                        BaseExceptionGroup,
                    ) as exc:  # collect every operation's failure, then report them together
                        failures.append(f"{label}: {str(exc)[:1500]}")
                    finally:
                        timings[label] = time.monotonic() - t0
    assert operations >= 15
    assert not failures, "\n\n".join(failures)
    # Speed is bench/'s business: the run time is reported, not judged (a loaded CI box is slower).
    slowest = max(timings.items(), key=lambda kv: kv[1])
    print(f"\n{operations} operations in {time.monotonic() - started:.0f} s; slowest {slowest[0]} {slowest[1]:.1f} s")

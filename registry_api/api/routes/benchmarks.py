"""Benchmark ingestion: device latency per variant, for variant choice and the warehouse."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool

from edge.events import BenchmarkReport
from registry_api import crud
from registry_api.api.deps import RegistryDep, Reporter
from registry_api.api.responses import AUTH, errors
from registry_api.errors import NotFoundError
from registry_api.models import BenchmarkStored
from registry_api.state import Registry
from registry_api.telemetry import store_benchmark

router = APIRouter(prefix="/v1/benchmarks", tags=["benchmarks"])


def _store(registry: Registry, report: BenchmarkReport) -> bool:
    with registry.sessions.begin() as session:
        version = crud.get_version(session, report.model, report.version)
        if not any(v.variant == report.variant for v in version.variants):
            raise NotFoundError(f"version {report.version} of {report.model!r} has no variant {report.variant!r}")
        created = crud.add_benchmark(session, report)
    registry.manifests.invalidate(report.model)
    return created


@router.post(
    "",
    response_model=BenchmarkStored,
    status_code=201,
    summary="Report a device benchmark",
    description=(
        "Results of `edgeloop bench` on a device: latency percentiles of one variant on one device class. "
        "Stored in the registry (variant choice uses the latest per version, variant and device class) and "
        "in the warehouse `benchmarks` table. Idempotent by benchmark_id (200 on a resend)."
    ),
    responses=errors(
        *AUTH,
        400,
        404,
        413,
        422,
        extra={200: {"model": BenchmarkStored, "description": "Already stored (same benchmark_id)."}},
    ),
)
async def report(body: BenchmarkReport, response: Response, registry: RegistryDep, _: Reporter) -> BenchmarkStored:
    created = await run_in_threadpool(_store, registry, body)
    # Upserted even on a resend: a warehouse write that failed after the registry commit gets its retry.
    await asyncio.wrap_future(registry.writer.call(lambda wh: store_benchmark(wh, body)))
    response.status_code = 201 if created else 200
    return BenchmarkStored(benchmark_id=str(body.benchmark_id), created=created)

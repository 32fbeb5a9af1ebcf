"""Benchmark ingestion: QA's latency per variant on target devices, for variant choice and the warehouse."""

from __future__ import annotations

import asyncio
import datetime as dt

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool

from edge.events import BenchmarkReport
from registry_api import crud, db
from registry_api.api.deps import Benchmarker, RegistryDep
from registry_api.api.responses import AUTH, errors
from registry_api.core.config import RegistrySettings
from registry_api.errors import InvalidRequest, NotFoundError
from registry_api.models import BenchmarkStored
from registry_api.state import Registry
from registry_api.telemetry import store_benchmark

router = APIRouter(prefix="/v1/benchmarks", tags=["benchmarks"])


def check_measured_at(measured_at: dt.datetime, received_at: dt.datetime, settings: RegistrySettings) -> None:
    """Refuse a measurement time from the future (beyond clock skew) or from long ago."""
    ahead = (measured_at - received_at).total_seconds()
    if ahead > settings.benchmark_clock_skew_s:
        raise InvalidRequest(
            f"measured_at {measured_at.isoformat()} is {ahead:.0f} s ahead of the registry's clock "
            f"(allowed: {settings.benchmark_clock_skew_s:g} s); set the device's clock (NTP) and upload again"
        )
    if -ahead > settings.benchmark_max_age_s:
        raise InvalidRequest(
            f"measured_at {measured_at.isoformat()} is older than {settings.benchmark_max_age_s:g} s "
            "(EDGELOOP_REGISTRY_BENCHMARK_MAX_AGE_S); benchmark again and upload the fresh figures"
        )


def _store(registry: Registry, report: BenchmarkReport, key_id: str) -> bool:
    received_at = db.utcnow()
    check_measured_at(report.measured_at, received_at, registry.settings)
    with registry.sessions.begin() as session:
        version = crud.get_version(session, report.model, report.version)
        if not any(v.variant == report.variant for v in version.variants):
            raise NotFoundError(f"version {report.version} of {report.model!r} has no variant {report.variant!r}")
        created = crud.add_benchmark(session, report, key_id, received_at)
    registry.manifests.invalidate(report.model)
    return created


@router.post(
    "",
    response_model=BenchmarkStored,
    status_code=201,
    summary="Report a benchmark (qa or publisher key)",
    description=(
        "Results of `edgeloop bench` on a target device: latency percentiles of one variant on one device "
        "class. Needs the `benchmark` scope (roles qa and publisher; device keys get 403): a report steers which "
        "variant every device of the class is served.\n\n"
        "Variant choice uses, per version, variant and device class, the upper median of the latest report of "
        "each of the `benchmark_devices` (default 5) devices that reported most recently, ordered by the "
        "registry's receive time; a device is the uploading key plus `device_id`, so one device sending many "
        "reports counts once, and from three devices on no single one moves the median. A variant counts once "
        "`benchmark_min_devices` (default 1) devices reported it; reports of revoked keys stop counting.\n\n"
        "`measured_at` may be at most `benchmark_clock_skew_s` (300 s) ahead of the registry's clock and at most "
        "`benchmark_max_age_s` (30 days) old, else 422. Stored in the registry and in the warehouse "
        "`benchmarks` table. Idempotent by benchmark_id (200 on a resend)."
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
async def report(
    body: BenchmarkReport, response: Response, registry: RegistryDep, caller: Benchmarker
) -> BenchmarkStored:
    created = await run_in_threadpool(_store, registry, body, caller.key_id)
    # Upserted even on a resend: a warehouse write that failed after the registry commit gets its retry.
    await asyncio.wrap_future(registry.writer.call(lambda wh: store_benchmark(wh, body)))
    response.status_code = 201 if created else 200
    return BenchmarkStored(benchmark_id=str(body.benchmark_id), created=created)

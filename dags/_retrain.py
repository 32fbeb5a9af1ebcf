"""The steps of the `retrain` DAG, each a thin call of one stage's entry point.

Every step takes the DAG settings and small dicts (URIs and ids, the XComs) and returns
one. Idempotency comes from the stages' own contracts plus ids derived from the DAG run:
ingest returns the same dataset version for an unchanged folder, the training run id is
a function of the DAG run id (a finished run is reused, not retrained), conversion writes
to a folder named after the run, and the registry publishes content-addressed.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from dags import _photos
from dags._registry import connect
from dags._settings import DagSettings
from edgeloop import runs, storage, tables, warehouse
from edgeloop.errors import EdgeloopError
from edgeloop.quiet import quiet
from edgeloop.runs import RunFolder
from edgeloop.settings import get_settings

log = logging.getLogger(__name__)


class StageFailed(EdgeloopError):
    """A stage finished without the artefact the next step needs; the message says where to look."""


class ConversionFailed(StageFailed):
    """Conversion produced no publishable variant."""


PRODUCTION = "production"
CANARY = "canary"
MAX_XCOM_REASONS = 20


def training_run_id(dag_run_id: str) -> str:
    """A training run id that is a pure function of the DAG run id, safe in paths and URIs."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", dag_run_id).strip("-")
    return f"airflow-{slug}"


def _quiet() -> None:
    """Before a stage imports TensorFlow or Beam: their chatter on stderr reaches the task log as errors."""
    quiet(get_settings().log_level)


def run_ingest(settings: DagSettings) -> dict[str, Any]:
    """Ingest the photos incrementally from the latest dataset version (unchanged photos: same version)."""
    _quiet()
    from pipelines.ingest import IngestOptions, ingest, latest_version

    listing = _photos.fingerprint(settings.photos)
    previous = latest_version(settings.datasets)
    result = ingest(
        IngestOptions(
            input=settings.photos,
            output=settings.datasets,
            previous=previous,
            runner=settings.beam_runner,
            beam_args=tuple(settings.beam_options),
        )
    )
    _photos.remember_ingested(settings.state, settings.photos, listing, result.dataset_version)
    log.info(
        "dataset %s at %s (%s; previous %s, new products %s)",
        result.dataset_version,
        result.uri,
        "new version" if result.created else "unchanged",
        previous,
        list(result.new_classes) or "none",
    )
    return {"dataset_version": result.dataset_version, "dataset_uri": result.uri, "created": result.created}


def find_production(settings: DagSettings) -> dict[str, Any]:
    """The production version and the training run behind it (warm start and gate baseline), if any.

    A published package holds converted files only; warm start needs the Keras model, so
    the run is found by the card's version (the training run id) in `training_runs`.
    """
    none: dict[str, Any] = {"version": None, "run_id": None, "run_dir": None, "model_uri": None}
    with connect(settings) as registry:
        alias = registry.alias(settings.model_name, PRODUCTION)
        if alias is None:
            log.info("model %s has no production version yet: training from scratch", settings.model_name)
            return none
        body = registry.version(settings.model_name, alias.version)
    run_id = str(body.get("run_version") or "")
    with warehouse.connect() as wh:
        rows = wh.query(f"SELECT model_uri FROM {tables.TRAINING_RUNS.name} WHERE run_id = ?", [run_id])
    candidates = [str(r["model_uri"]) for r in rows if r["model_uri"]]
    candidates.append(RunFolder.of(settings.runs, run_id).model)
    for model_uri in candidates:
        if run_id and storage.exists(model_uri):
            log.info("production is version %s, trained by run %s (%s)", alias.version, run_id, model_uri)
            return {
                "version": alias.version,
                "run_id": run_id,
                "run_dir": model_uri.rsplit("/", 1)[0],
                "model_uri": model_uri,
            }
    log.warning(
        "production version %s names run %r, whose Keras model is not found (%s): training from scratch",
        alias.version,
        run_id,
        ", ".join(candidates),
    )
    return {**none, "version": alias.version}


def run_train(
    settings: DagSettings, dataset: dict[str, Any], production: dict[str, Any], run_id: str
) -> dict[str, Any]:
    """Train on the dataset, warm-started from production; a finished run with this id is reused."""
    _quiet()
    from pipelines.train.options import TrainOptions

    with warehouse.connect() as wh:
        done = wh.query(
            f"SELECT model_uri FROM {tables.TRAINING_RUNS.name} WHERE run_id = ? AND status = 'succeeded'", [run_id]
        )
    run_dir = storage.join(settings.runs, run_id)
    if done:
        # A retry after a later failure, or a re-run of the same logical date: keep the finished run.
        log.info("training run %s already succeeded; reusing %s", run_id, run_dir)
        return {"run_id": run_id, "run_dir": run_dir, "model_uri": done[0]["model_uri"]}

    from pipelines.train.core import train

    result = train(
        TrainOptions(
            dataset=dataset["dataset_uri"],
            warm_start=production.get("model_uri"),
            model_name=settings.model_name,
            runs_root=settings.runs,
            run_id=run_id,
        )
    )
    return {"run_id": result.run_id, "run_dir": result.run_dir, "model_uri": result.model_uri}


def run_gate(settings: DagSettings, run: dict[str, Any], production: dict[str, Any]) -> dict[str, Any]:
    """Gate the run against thresholds and the production run; the stage stores the full report.

    A failed gate is a result, not an error: it is returned (and the run ends unpublished),
    so a retry never turns "not good enough" into a red task.
    """
    _quiet()
    from pipelines.gate.core import gate

    report = gate(run["run_dir"], baseline=production.get("run_dir"))
    reasons = [
        f"{c.name}: {c.detail or f'{c.value} vs threshold {c.threshold}'}" for c in report.checks if not c.passed
    ]
    if len(reasons) > MAX_XCOM_REASONS:
        # XComs stay small; the full list is in the report.
        reasons = [*reasons[:MAX_XCOM_REASONS], f"… and {len(reasons) - MAX_XCOM_REASONS} more in the report"]
    return {
        "passed": bool(report.passed),
        "verdict": report.verdict,
        "reasons": reasons,
        "report_uri": RunFolder(run["run_dir"]).gate,
        "baseline": production.get("run_id"),
    }


def log_gate(report: dict[str, Any]) -> bool:
    """Log the gate's verdict; False ends the DAG run as not published."""
    if report["passed"]:
        log.info("gate %s: publishing (report %s)", report["verdict"], report["report_uri"])
        return True
    log.warning(
        "gate failed: NOT PUBLISHED. Reasons:\n  %s\nFull report: %s",
        "\n  ".join(report["reasons"]) or "(none given)",
        report["report_uri"],
    )
    return False


def run_convert(settings: DagSettings, run: dict[str, Any]) -> dict[str, Any]:
    """Convert the run's model into `<packages>/<model>/<run_id>`; an existing package of this run is reused.

    Reuse matters beyond speed: a fresh conversion has a new timestamp in its card, and so
    a new digest, which the registry would publish as a new version.
    """
    _quiet()
    from conversion.pipeline import ConvertOptions, convert
    from edgeloop.card import read_card

    package_uri = storage.join(settings.packages, settings.model_name, run["run_id"])
    if storage.exists(storage.join(package_uri, runs.CARD)):
        card = read_card(package_uri)
        if card.lineage.run_id == run["run_id"] and card.publishable_variants():
            log.info("package of run %s already converted at %s; reusing it", run["run_id"], package_uri)
            return {"package_uri": package_uri, "run_id": run["run_id"]}
    result = convert(run["run_dir"], options=ConvertOptions(output=package_uri))
    if not result.publishable:
        raise ConversionFailed(
            f"no variant of run {run['run_id']} passed its parity checks; see {package_uri}/benchmark.md"
        )
    log.info("package %s: publishable variants %s", result.package_uri, ", ".join(result.publishable))
    return {"package_uri": result.package_uri, "run_id": run["run_id"]}


def publish(settings: DagSettings, package: dict[str, Any]) -> dict[str, Any]:
    """Publish the package; the registry answers with the existing version if it has it already."""
    with connect(settings) as registry:
        published = registry.publish(settings.model_name, package["package_uri"])
    log.info(
        "%s %s version %s", "published" if published.created else "already had", settings.model_name, published.version
    )
    return {"version": published.version, "package_uri": package["package_uri"]}


def set_canary(settings: DagSettings, published: dict[str, Any]) -> dict[str, Any]:
    """Point `canary` at the new version with a small rollout percentage."""
    with connect(settings) as registry:
        state = registry.set_alias(
            settings.model_name, CANARY, int(published["version"]), rollout_percent=settings.canary_rollout_percent
        )
    log.info("canary of %s -> version %s at %s%%", settings.model_name, state.version, state.rollout_percent)
    return {"model": settings.model_name, "version": state.version, "rollout_percent": state.rollout_percent}

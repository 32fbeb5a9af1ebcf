"""Every warehouse table, defined once and rendered for DuckDB and BigQuery.

A row's natural key (`key`) makes writes idempotent: re-running a step replaces
the same rows instead of adding new ones. Event tables are partitioned by day
in BigQuery (`partition_by`). Adding a column here is a safe migration (it is
added as NULLable on the next `ensure`); changing a type is refused.
"""

from __future__ import annotations

import dataclasses
import enum


class T(enum.StrEnum):
    """Column types, named as BigQuery names them."""

    STRING = "STRING"
    INT64 = "INT64"
    FLOAT64 = "FLOAT64"
    BOOL = "BOOL"
    TIMESTAMP = "TIMESTAMP"
    DATE = "DATE"
    JSON = "JSON"


DUCKDB_TYPES = {
    T.STRING: "VARCHAR",
    T.INT64: "BIGINT",
    T.FLOAT64: "DOUBLE",
    T.BOOL: "BOOLEAN",
    T.TIMESTAMP: "TIMESTAMP",  # always UTC; aware datetimes are converted on write
    T.DATE: "DATE",
    T.JSON: "VARCHAR",  # JSON text; no extension needed offline
}


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    type: T
    description: str = ""
    required: bool = False


@dataclasses.dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    partition_by: str | None = None  # a TIMESTAMP or DATE column; BigQuery partitions by its day
    cluster_by: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name}: duplicate column names")
        for name in (*self.key, *self.cluster_by, *([self.partition_by] if self.partition_by else [])):
            if name not in names:
                raise ValueError(f"table {self.name}: {name!r} is not a column")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def duckdb_ddl(self) -> str:
        cols = []
        for col in self.columns:
            not_null = " NOT NULL" if col.required or col.name in self.key else ""
            cols.append(f"  {col.name} {DUCKDB_TYPES[col.type]}{not_null}")
        cols.append(f"  PRIMARY KEY ({', '.join(self.key)})")
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n" + ",\n".join(cols) + "\n)"

    def bigquery_ddl(self, dataset: str) -> str:
        cols = []
        for col in self.columns:
            not_null = " NOT NULL" if col.required or col.name in self.key else ""
            desc = col.description.replace('"', "'")
            options = f' OPTIONS(description="{desc}")' if desc else ""
            cols.append(f"  `{col.name}` {col.type.value}{not_null}{options}")
        ddl = f"CREATE TABLE IF NOT EXISTS `{dataset}.{self.name}` (\n" + ",\n".join(cols) + "\n)"
        if self.partition_by:
            part = self.column(self.partition_by)
            ddl += f"\nPARTITION BY {'DATE(' + part.name + ')' if part.type == T.TIMESTAMP else part.name}"
        cluster = self.cluster_by or (self.key[:4] if self.partition_by else ())
        if cluster:
            ddl += f"\nCLUSTER BY {', '.join(cluster)}"
        desc = self.description.replace('"', "'")
        return ddl + f'\nOPTIONS(description="{desc}")'


def _c(name: str, type_: T, description: str = "", required: bool = False) -> Column:
    return Column(name, type_, description, required)


S, I, F, B, TS, J, D = T.STRING, T.INT64, T.FLOAT64, T.BOOL, T.TIMESTAMP, T.JSON, T.DATE

DATASETS = Table(
    "datasets",
    "One row per dataset version written by ingest.",
    (
        _c("dataset_version", S, "Version id, e.g. v0003."),
        _c("created_at", TS, "When ingest finished (UTC).", True),
        _c("parent_version", S, "Previous version extended incrementally, if any."),
        _c("input_uri", S, "Where the photos were read from."),
        _c("output_uri", S, "Folder holding the shards and dataset.json."),
        _c("n_input", I, "Files seen."),
        _c("n_known", I, "Files skipped: the parent version already had them (incremental ingest)."),
        _c("n_written", I, "Examples written (all splits)."),
        _c("n_duplicates", I, "Files dropped as byte-identical duplicates."),
        _c("n_conflicts", I, "Files excluded because one photo was filed under two products."),
        _c("n_dead_letters", I, "Files rejected, with reasons in the dead-letter file."),
        _c("n_classes", I, "Products in the label map."),
        _c("runner", S, "Beam runner."),
        _c("beam_version", S),
        _c("options", J, "Ingest options as JSON."),
        _c("label_map", J, "Index to product name, as JSON."),
    ),
    key=("dataset_version",),
)

DATASET_CLASSES = Table(
    "dataset_classes",
    "Examples per dataset version, split and product.",
    (
        _c("dataset_version", S),
        _c("split", S, "train, eval or test."),
        _c("label", S, "Product name."),
        _c("label_index", I, "Stable class index.", True),
        _c("examples", I, "", True),
    ),
    key=("dataset_version", "split", "label"),
)

TRAINING_RUNS = Table(
    "training_runs",
    "One row per training run, success or not.",
    (
        _c("run_id", S),
        _c("dataset_version", S, "", True),
        _c("status", S, "running, succeeded, failed, nan_loss, invalid_input.", True),
        _c("message", S, "Why the run ended as it did."),
        _c("started_at", TS, "", True),
        _c("finished_at", TS),
        _c("duration_s", F),
        _c("backbone", S, "e.g. mobilenet_v2 alpha=0.35 size=96."),
        _c("backbone_source", S, "imagenet, a weights file, warm start from a model URI, or none."),
        _c("code_commit", S),
        _c("settings", J, "Every training setting, as JSON."),
        _c("n_classes", I),
        _c("epochs", I),
        _c("accuracy", F),
        _c("top3_accuracy", F),
        _c("macro_f1", F),
        _c("ece", F, "Expected calibration error on eval."),
        _c("model_uri", S),
    ),
    key=("run_id",),
)

EPOCH_METRICS = Table(
    "epoch_metrics",
    "Per-epoch training and eval metrics.",
    (
        _c("run_id", S),
        _c("phase", S, "head or finetune."),
        _c("epoch", I),
        _c("loss", F),
        _c("accuracy", F),
        _c("val_loss", F),
        _c("val_accuracy", F),
        _c("val_macro_f1", F),
        _c("learning_rate", F),
        _c("duration_s", F),
        _c("recorded_at", TS),
    ),
    key=("run_id", "phase", "epoch"),
)

CLASS_METRICS = Table(
    "class_metrics",
    "Per-class eval metrics of each run.",
    (
        _c("run_id", S),
        _c("label", S),
        _c("label_index", I, "", True),
        _c("precision", F),
        _c("recall", F),
        _c("f1", F),
        _c("support", I),
        _c("recorded_at", TS),
    ),
    key=("run_id", "label"),
)

GATE_RESULTS = Table(
    "gate_results",
    "Every check the gate made on a run, with threshold, value and verdict.",
    (
        _c("run_id", S),
        _c("check_name", S, "e.g. min_macro_f1, min_class_recall:lavender-soap, no_regression:accuracy."),
        _c("threshold", F),
        _c("value", F),
        _c("passed", B, "", True),
        _c("detail", S, "The reason, in words."),
        _c("verdict", S, "The run's overall verdict: pass, fail or forced.", True),
        _c("baseline", S, "The production model compared against, if any."),
        _c("forced_by", S),
        _c("forced_reason", S),
        _c("evaluated_at", TS, "", True),
    ),
    key=("run_id", "check_name"),
)

CONVERSIONS = Table(
    "conversions",
    "One row per converted variant of a model.",
    (
        _c("model_name", S),
        _c("model_version", S),
        _c("variant", S, "e.g. tflite_int8, onnx_fp32."),
        _c("run_id", S),
        _c("file", S),
        _c("sha256", S),
        _c("size_bytes", I),
        _c("runtime", S),
        _c("quantization", S),
        _c("input_dtype", S),
        _c("output_dtype", S),
        _c("weights_quantized", B),
        _c("accuracy", F),
        _c("macro_f1", F),
        _c("agreement", F, "Top-1 agreement with the Keras model."),
        _c("max_abs_diff", F),
        _c("latency_p50_ms", F),
        _c("latency_p90_ms", F),
        _c("latency_p99_ms", F),
        _c("init_ms", F),
        _c("peak_mem_mb", F),
        _c("publishable", B),
        _c("reason", S),
        _c("converted_at", TS),
        _c("gate_ignored", B, "True when --ignore-gate converted a run that failed its gate."),
    ),
    key=("model_name", "model_version", "variant"),
)

TELEMETRY_EVENTS = Table(
    "telemetry_events",
    "Events sent by devices; event_id is the idempotency key.",
    (
        _c("event_id", S),
        _c("device_id", S, "Pseudonymous device id.", True),
        _c("event_time", TS, "When it happened on the device (UTC).", True),
        _c("received_at", TS, "When the registry accepted it.", True),
        _c("kind", S, "inference, update, rollback, error, bench.", True),
        _c("model", S),
        _c("version", S),
        _c("variant", S),
        _c("latency_ms", F),
        _c("top1_label", S),
        _c("top1_score", F),
        _c("app_version", S),
        _c("platform", S),
        _c("device_class", S),
        _c("os_version", S),
        _c("detail", J, "Kind-specific extras."),
    ),
    key=("event_id",),
    partition_by="event_time",
    cluster_by=("model", "version", "kind"),
)

BENCHMARKS = Table(
    "benchmarks",
    "Latency measured by `edgeloop bench` on a device class.",
    (
        _c("benchmark_id", S),
        _c("device_class", S, "", True),
        _c("device_id", S),
        _c("model", S),
        _c("version", S),
        _c("variant", S),
        _c("runtime", S),
        _c("threads", I),
        _c("runs", I),
        _c("p50_ms", F),
        _c("p90_ms", F),
        _c("p99_ms", F),
        _c("mean_ms", F),
        _c("std_ms", F),
        _c("init_ms", F),
        _c("peak_mem_mb", F),
        _c("measured_at", TS, "", True),
    ),
    key=("benchmark_id",),
    partition_by="measured_at",
)

RELEASE_DECISIONS = Table(
    "release_decisions",
    "What release health decided about a canary, with the numbers.",
    (
        _c("model", S),
        _c("version", S),
        _c("alias", S),
        _c("decided_on", D, "Logical date of the decision."),
        _c("decision", S, "promote, rollback or wait.", True),
        _c("reason", S),
        _c("metrics", J),
        _c("decided_at", TS, "", True),
    ),
    key=("model", "version", "alias", "decided_on"),
)

ALL: tuple[Table, ...] = (
    DATASETS,
    DATASET_CLASSES,
    TRAINING_RUNS,
    EPOCH_METRICS,
    CLASS_METRICS,
    GATE_RESULTS,
    CONVERSIONS,
    TELEMETRY_EVENTS,
    BENCHMARKS,
    RELEASE_DECISIONS,
)

BY_NAME = {t.name: t for t in ALL}

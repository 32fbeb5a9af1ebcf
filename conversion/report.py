"""The benchmark table printed after a conversion and saved as `benchmark.md` (Ultralytics-style)."""

from __future__ import annotations

from collections.abc import Sequence

from edgeloop.card import VariantEntry

COLUMNS = (
    "Variant",
    "Status",
    "Size (MB)",
    "Accuracy",
    "Macro-F1",
    "ΔF1 (pts)",
    "Agreement",
    "Max |Δp|",
    "p50 (ms)",
    "p90 (ms)",
    "Init (ms)",
    "Peak (MB)",
)


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def markdown_table(
    entries: Sequence[VariantEntry], *, keras_macro_f1: float | None = None, keras_accuracy: float | None = None
) -> str:
    """A Markdown table, one row per variant, then the reasons of any variant not publishable."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    if keras_macro_f1 is not None:
        ref = ["keras (reference)", "-", "-", _num(keras_accuracy, ".4f"), _num(keras_macro_f1, ".4f")]
        lines.append("| " + " | ".join(ref + ["-"] * (len(COLUMNS) - len(ref))) + " |")
    for e in entries:
        drop = None if keras_macro_f1 is None or e.macro_f1 is None else 100 * (keras_macro_f1 - e.macro_f1)
        lat = e.latency
        row = [
            e.variant,
            "✅" if e.publishable else "❌",
            f"{e.size / 1e6:.2f}",
            _num(e.accuracy, ".4f"),
            _num(e.macro_f1, ".4f"),
            _num(drop, "+.2f"),
            "-" if e.agreement is None else f"{100 * e.agreement:.2f}%",
            _num(e.max_abs_diff, ".1e"),
            _num(lat.p50_ms if lat else None, ".2f"),
            _num(lat.p90_ms if lat else None, ".2f"),
            _num(lat.init_ms if lat else None, ".1f"),
            _num(lat.peak_mem_mb if lat else None, ".0f"),
        ]
        lines.append("| " + " | ".join(row) + " |")
    failed = [e for e in entries if not e.publishable]
    if failed:
        lines.append("")
        lines.extend(f"- **{e.variant}** not publishable: {e.reason}" for e in failed)
    return "\n".join(lines) + "\n"


def app_usage(entries: Sequence[VariantEntry]) -> str:
    """How an app loads a TFLite variant of this package with MediaPipe Tasks (for `benchmark.md`).

    Names the smallest publishable TFLite file; empty when there is none.
    """
    tflite = sorted((e for e in entries if e.runtime == "litert" and e.publishable), key=lambda e: e.size)
    if not tflite:
        return ""
    file = tflite[0].file
    return f"""
## Use it in an app (MediaPipe Tasks)

Every `.tflite` file here carries standard TFLite Metadata (labels, RGB input size, normalization), so
MediaPipe Tasks' `ImageClassifier` loads it as it is and names categories with the labels:

```kotlin
// Android (com.google.mediapipe:tasks-vision)
val options = ImageClassifier.ImageClassifierOptions.builder()
    .setBaseOptions(BaseOptions.builder().setModelAssetPath("{file}").build())
    .setMaxResults(3).build()
val top = ImageClassifier.createFromOptions(context, options)
    .classify(BitmapImageBuilder(bitmap).build())
    .classificationResult().classifications()[0].categories()[0]   // top.categoryName(), top.score()
```

```swift
// iOS (MediaPipeTasksVision)
let options = ImageClassifierOptions()
options.baseOptions.modelAssetPath = Bundle.main.path(forResource: "{file.removesuffix(".tflite")}", ofType: "tflite")!
options.maxResults = 3
let result = try ImageClassifier(options: options).classify(image: MPImage(uiImage: photo))
let top = result.classificationResult.classifications[0].categories[0]   // top.categoryName, top.score
```

```ts
// Web (@mediapipe/tasks-vision)
const vision = await FilesetResolver.forVisionTasks("/mediapipe/wasm");
const classifier = await ImageClassifier.createFromOptions(vision, {{
  baseOptions: {{ modelAssetPath: "/models/{file}" }}, maxResults: 3,
}});
const top = classifier.classify(image).classifications[0].categories[0];   // top.categoryName, top.score
```

edgeloop's device SDK adds what a bundled file cannot: signed, pinned-key updates from the registry,
staged rollout, atomic swap with health check and rollback, and telemetry back to the warehouse.
"""

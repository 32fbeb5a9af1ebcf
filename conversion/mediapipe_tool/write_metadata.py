"""Write standard TFLite Metadata into one model file; runs inside the MediaPipe tool environment.

Called by `conversion.tflite_metadata` as `python write_metadata.py SPEC.json`. The spec
names the bare flatbuffer, the output path, the model's name, version and description,
the labels, the input size and normalization, and extra associated files (edgeloop.json).

MediaPipe's `MetadataPopulator` packs `labels.txt` and every extra file into one ZIP
appended to the flatbuffer, so MediaPipe Tasks and edgeloop's own reader find their files
in the same archive. The metadata is assembled from MediaPipe's `metadata_info` pieces
rather than `image_classifier.MetadataWriter` because that writer records no model
version, no image size and no model-level associated file.

Also writes what MediaPipe's metadata displayer shows to SPEC["displayer_json"].
Exit status 0 on success; on failure one line on stderr naming the problem.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

LABELS_FILE = "labels.txt"


def write(spec: dict[str, Any]) -> None:
    import flatbuffers
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb
    from mediapipe.tasks.python.metadata import metadata
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_info, writer_utils

    model = bytearray(Path(spec["model"]).read_bytes())
    general = metadata_info.GeneralMd(
        name=spec["name"],
        version=spec["version"],
        description=spec["description"],
        author=spec.get("author"),
        licenses=spec.get("license"),
    ).create_metadata()

    image = metadata_info.InputImageTensorMd(
        name="image",
        description=spec["input_description"],
        norm_mean=spec["norm_mean"],
        norm_std=spec["norm_std"],
        color_space_type=fb.ColorSpaceType.RGB,
        tensor_type=writer_utils.get_input_tensor_types(model)[0],
    ).create_metadata()
    size = fb.ImageSizeT()
    size.width, size.height = spec["width"], spec["height"]
    image.content.contentProperties.defaultSize = size

    # The label file's path only names the entry; its bytes come from `labels` below.
    scores = metadata_info.ClassificationTensorMd(
        name="score",
        description="Probability of each product, in the order of labels.txt.",
        label_files=[metadata_info.LabelFileMd(LABELS_FILE)],
        tensor_type=writer_utils.get_output_tensor_types(model)[0],
    ).create_metadata()

    subgraph = fb.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [image]
    subgraph.outputTensorMetadata = [scores]
    general.subgraphMetadata = [subgraph]
    # Extra files (edgeloop.json) are recorded at model level so validators know they belong there.
    extras = spec.get("associated_files", [])
    general.associatedFiles = []
    for extra in extras:
        entry = fb.AssociatedFileT()
        entry.name, entry.description, entry.type = extra["name"], extra["description"], fb.AssociatedFileType.UNKNOWN
        general.associatedFiles.append(entry)

    builder = flatbuffers.Builder(0)
    builder.Finish(general.Pack(builder), metadata.MetadataPopulator.METADATA_FILE_IDENTIFIER)
    populator = metadata.MetadataPopulator.with_model_buffer(model)
    populator.load_metadata_buffer(builder.Output())
    files = {LABELS_FILE: "\n".join(spec["labels"]).encode("utf-8")}
    files.update({extra["name"]: extra["text"].encode("utf-8") for extra in extras})
    populator.load_associated_file_buffers(files)
    populator.populate()
    written = bytes(populator.get_model_buffer())
    Path(spec["output"]).write_bytes(written)
    shown = metadata.MetadataDisplayer.with_model_buffer(written)
    Path(spec["displayer_json"]).write_text(shown.get_metadata_json(), encoding="utf-8")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: write_metadata.py SPEC.json\n")
        return 2
    try:
        write(json.loads(Path(argv[0]).read_text(encoding="utf-8")))
    except (ValueError, KeyError, OSError) as exc:  # MediaPipe validates with ValueError
        sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

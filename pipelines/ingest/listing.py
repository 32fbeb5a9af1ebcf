"""Find the photos to ingest: a folder or `gs://` prefix with one sub-folder per product, or a
catalogue (CSV or JSONL of `uri,label`) for photos not laid out that way.

The listing runs in the driver: it is cheap metadata (URI, size, generation), it lets an
empty or missing input fail before any worker starts, and it is what incremental mode
compares with the previous version's inventory.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath

from edgeloop import storage
from edgeloop.errors import NotFound, StorageError

from .elements import InputFile
from .errors import CatalogueError, EmptyInputError, InputNotFoundError

CATALOGUE_SUFFIXES = (".csv", ".jsonl")


def is_catalogue(uri: str) -> bool:
    return uri.lower().endswith(CATALOGUE_SUFFIXES)


def normalize(uri: str) -> str:
    """Absolute local paths (so URIs in the dataset mean the same thing anywhere); gs:// unchanged."""
    if storage.is_local(uri):
        return str(Path(os.path.abspath(storage.local_path(uri))))  # noqa: PTH100 - resolve() would follow symlinks
    return uri.rstrip("/") if not is_catalogue(uri) else uri


def relative(root: str, uri: str) -> str | None:
    """`uri` relative to the folder `root`, or None when it is not under it."""
    if storage.is_local(root) and storage.is_local(uri):
        rel = os.path.relpath(storage.local_path(uri), storage.local_path(root))
        return None if rel == ".." or rel.startswith("../") else PurePosixPath(rel).as_posix()
    prefix = root.rstrip("/") + "/"
    return uri[len(prefix) :] if uri.startswith(prefix) else None


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") for part in rel.split("/"))


def list_folder(root: str) -> list[InputFile]:
    """Every file under `root`; its product is the first folder below `root` (None for loose files).

    Names starting with "." (editor and OS droppings, in-flight uploads) are ignored.
    """
    if storage.is_local(root):
        path = storage.local_path(root)
        if not path.exists():
            raise InputNotFoundError(f"input {root!r} does not exist; pass a folder with one sub-folder per product")
        if not path.is_dir():
            raise InputNotFoundError(
                f"input {root!r} is a file; pass a folder of product folders or a catalogue (.csv or .jsonl)"
            )
    files: list[InputFile] = []
    try:
        for obj in storage.list_objects(root.rstrip("/") + "/"):
            rel = relative(root, obj.uri)
            if rel is None or rel.endswith("/") or not rel or _hidden(rel):
                continue  # gs:// "folder" placeholders end in "/"
            parts = rel.split("/")
            label = parts[0] if len(parts) > 1 else None
            files.append(InputFile(obj.uri, label, obj.size, obj.generation))
    except NotFound as exc:
        raise InputNotFoundError(f"input {root!r} cannot be listed: {exc}") from None
    return sorted(files, key=lambda f: f.uri)


def _rows(uri: str, text: str) -> Iterator[tuple[int, str, str]]:
    if uri.lower().endswith(".jsonl"):
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CatalogueError(f"{uri} line {number}: not JSON ({exc.msg}); write one object per line") from None
            if not isinstance(row, dict) or not row.get("uri") or not row.get("label"):
                raise CatalogueError(f'{uri} line {number}: expected {{"uri": ..., "label": ...}}, got {line[:80]!r}')
            yield number, str(row["uri"]), str(row["label"])
        return
    reader = csv.reader(io.StringIO(text))
    header: Sequence[str] | None = None
    for number, row in enumerate(reader, 1):
        if not row or not any(cell.strip() for cell in row):
            continue
        if header is None and number == 1 and [c.strip().lower() for c in row][:2] == ["uri", "label"]:
            header = row
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise CatalogueError(f"{uri} line {number}: expected 'uri,label', got {','.join(row)[:80]!r}")
        yield number, row[0].strip(), row[1].strip()


def read_catalogue(uri: str) -> list[InputFile]:
    """Files named by a catalogue; relative URIs are relative to the catalogue's folder.

    Sizes and generations come from listing each folder the catalogue points into (one
    listing per folder, not one request per file); rows whose file is absent are kept as
    `missing` so they end up in the dead letters, counted.
    """
    try:
        text = storage.read_text(uri)
    except NotFound:
        raise InputNotFoundError(f"catalogue {uri!r} does not exist; check the path") from None
    base = uri.rsplit("/", 1)[0] if "/" in uri else "."
    wanted: dict[str, str] = {}
    for number, ref, label in _rows(uri, text):
        absolute = ref if "://" in ref or ref.startswith("/") else storage.join(base, ref)
        absolute = normalize(absolute)
        if absolute in wanted and wanted[absolute] != label:
            raise CatalogueError(
                f"{uri} line {number}: {ref!r} is listed as {wanted[absolute]!r} and as {label!r}; keep one row"
            )
        wanted[absolute] = label
    folders = _minimal_folders(u.rsplit("/", 1)[0] for u in wanted)
    seen: dict[str, tuple[int, int | None]] = {}
    for folder in folders:
        try:
            for obj in storage.list_objects(folder.rstrip("/") + "/"):
                seen[normalize(obj.uri)] = (obj.size, obj.generation)
        except (NotFound, StorageError):
            continue  # every file under it will be reported missing
    files = []
    for ref, label in wanted.items():
        if ref in seen:
            size, generation = seen[ref]
            files.append(InputFile(ref, label, size, generation))
        else:
            files.append(InputFile(ref, label, 0, None, missing=True))
    return sorted(files, key=lambda f: f.uri)


def _minimal_folders(folders: Iterable[str]) -> list[str]:
    """Drop folders inside another listed folder (a recursive listing already covers them)."""
    out: list[str] = []
    for folder in sorted(set(folders)):
        if not any(folder == kept or folder.startswith(kept.rstrip("/") + "/") for kept in out):
            out.append(folder)
    return out


def list_inputs(uri: str) -> list[InputFile]:
    """The files of a folder, prefix or catalogue; raises if there are none."""
    files = read_catalogue(uri) if is_catalogue(uri) else list_folder(uri)
    if not files:
        raise EmptyInputError(
            f"input {uri!r} holds no files; put photos in one sub-folder per product "
            "(e.g. photos/lavender-soap/0001.jpg) or point --input at another folder"
        )
    return files


def split_known(
    files: Sequence[InputFile], known: Mapping[str, tuple[int, int | None]]
) -> tuple[list[InputFile], list[InputFile]]:
    """(new or changed files, files the previous version already saw with the same size and generation)."""
    new: list[InputFile] = []
    old: list[InputFile] = []
    for f in files:
        seen = known.get(f.uri)
        if seen is not None and not f.missing and seen == (f.size, f.generation):
            old.append(f)
        else:
            new.append(f)
    return new, old


__all__ = [
    "CATALOGUE_SUFFIXES",
    "is_catalogue",
    "list_folder",
    "list_inputs",
    "normalize",
    "read_catalogue",
    "relative",
    "split_known",
]

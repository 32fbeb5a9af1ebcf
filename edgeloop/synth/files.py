"""Files: a catalogue written class-per-folder as JPEGs (`generate`), with planted bad files on request."""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
from PIL import Image, ImageFilter

from edgeloop.synth.products import ProductSpec, _check_difficulty, _check_range, _iter_catalogue, _rng, catalogue
from edgeloop.synth.rendering import _grid, render

_log = logging.getLogger(__name__)

#: The kinds of file ``generate(plant_bad=True)`` plants, in the order they are planted.
PLANTED_KINDS: tuple[str, ...] = (
    "corrupt",
    "truncated",
    "not-image",
    "empty",
    "too-small",
    "cmyk",
    "palette-alpha",
    "grey",
    "huge",
    "exif-rotated",
    "duplicate-same",
    "duplicate-conflict",
)
#: Whether ingest should be able to use each planted kind. Duplicates decode fine;
#: ingest is expected to drop them as duplicates (and flag the label conflict).
PLANTED_USABLE: Mapping[str, bool] = MappingProxyType(
    {k: k not in {"corrupt", "truncated", "not-image", "empty", "too-small"} for k in PLANTED_KINDS}
)


@dataclass(frozen=True)
class SynthReport:
    """What `generate` produced. Paths in ``planted`` and ``duplicates`` are relative to ``root``.

    ``images_written`` counts photo files actually (re)written; identical files are skipped.
    ``duplicates`` maps each planted duplicate to the photo it copies.
    """

    root: str
    products: list[str]
    new_products: list[str]
    images_written: int
    planted: dict[str, str] = field(default_factory=dict)
    duplicates: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        """The report as pretty, key-sorted JSON."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def _jpeg(img: Image.Image, quality: int, **extra: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, **extra)
    return buf.getvalue()


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Atomically write ``data`` unless ``path`` already holds exactly it. True if written."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def _photo_name(spec: ProductSpec, index: int) -> str:
    return f"{spec.name}-{index:04d}.jpg"


def _planted_files(
    specs: Sequence[ProductSpec], images_per_product: int, size: int, seed: int, quality: int, root: Path
) -> tuple[dict[str, bytes], dict[str, str], dict[str, str]]:
    """(relative path -> bytes, relative path -> kind, duplicate -> source) for the planted files."""
    spread = specs[: min(4, len(specs))]
    files: dict[str, bytes] = {}
    kinds: dict[str, str] = {}
    dups: dict[str, str] = {}
    rng = _rng("planted", seed)

    def photo(spec: ProductSpec, k: int) -> Image.Image:
        # Fresh photos (indices past the real ones), so valid oddities are not duplicates.
        return render(spec, 100_000 + k, size=size, seed=seed)

    for k, kind in enumerate(PLANTED_KINDS):
        spec = spread[k % len(spread)]
        ext = "png" if kind == "palette-alpha" else "jpg"
        rel = f"{spec.name}/{spec.name}-{kind}.{ext}"
        if kind == "corrupt":
            real = _jpeg(photo(spec, k), quality)
            # A valid JFIF start, then noise where the next marker should be.
            noise = rng.integers(0, 255, 4096, dtype=np.uint8).tobytes()
            data = real[:20] + b"\x00" + noise
        elif kind == "truncated":
            real = _jpeg(photo(spec, k), quality)
            # Cut inside the scan data, never in the headers, so the file still opens.
            sos = real.index(b"\xff\xda")
            scan = sos + 2 + int.from_bytes(real[sos + 2 : sos + 4], "big")
            data = real[: min(max(int(len(real) * 0.4), scan + 64), len(real) - 16)]
        elif kind == "not-image":
            data = b"This is not a JPEG: a note someone saved with the wrong extension.\n" * 4
        elif kind == "empty":
            data = b""
        elif kind == "too-small":
            data = _jpeg(photo(spec, k).resize((8, 8), Image.Resampling.BOX), quality)
        elif kind == "cmyk":
            data = _jpeg(photo(spec, k).convert("CMYK"), quality)
        elif kind == "palette-alpha":
            im = photo(spec, k).convert("RGBA")
            x, y = _grid(im.width)
            a = np.where(x * x + y * y < 0.95, 255, 0).astype(np.uint8)
            im.putalpha(Image.fromarray(a))
            buf = io.BytesIO()
            im.quantize(64, method=Image.Quantize.FASTOCTREE).save(buf, "PNG")
            data = buf.getvalue()
        elif kind == "grey":
            data = _jpeg(photo(spec, k).convert("L"), quality)
        elif kind == "huge":
            im = photo(spec, k)
            im = im.crop((0, im.height // 8, im.width, im.height * 7 // 8)).filter(ImageFilter.GaussianBlur(1.5))
            data = _jpeg(im.resize((4000, 3000), Image.Resampling.BILINEAR), 75)
        elif kind == "exif-rotated":
            im = photo(spec, k)
            im = im.crop((0, im.height // 8, im.width, im.height * 7 // 8))  # landscape, so rotation shows
            exif = Image.Exif()
            exif[0x0112] = 6  # "rotate 90 CW to display": store the pixels turned 90 CCW
            data = _jpeg(im.transpose(Image.Transpose.ROTATE_90), quality, exif=exif.tobytes())
        elif kind == "duplicate-same":
            src = f"{spec.name}/{_photo_name(spec, 0)}"
            data = (root / src).read_bytes()
            dups[rel] = src
        else:  # duplicate-conflict: a photo of another product, filed under this one
            other = specs[(specs.index(spec) + 1) % len(specs)]
            src = f"{other.name}/{_photo_name(other, min(1, images_per_product - 1))}"
            data = (root / src).read_bytes()
            dups[rel] = src
        files[rel] = data
        kinds[rel] = kind
    return files, kinds, dups


def generate(
    root: str | Path,
    *,
    n_products: int = 20,
    images_per_product: int = 60,
    size: int = 256,
    seed: int = 0,
    difficulty: float = 0.3,
    add_products: int = 0,
    plant_bad: bool = False,
    jpeg_quality: int = 90,
    progress: Callable[[int, int], None] | None = None,
) -> SynthReport:
    """Write ``root/<product>/<product>-<index:04d>.jpg`` for a catalogue; idempotent.

    Products already in ``root`` (the leading catalogue products that have a folder)
    are kept; the catalogue is filled up to ``n_products`` and then ``add_products``
    more are appended and listed in ``new_products``. Files are written atomically and
    only when their bytes differ; nothing is ever deleted (``plant_bad=False`` leaves
    earlier planted files alone). ``progress(done, total)`` is called after each photo.
    """
    _check_range("n_products", n_products, 1, 10_000)
    _check_range("images_per_product", images_per_product, 1, 100_000)
    _check_range("size", size, 16, 4096)
    _check_range("add_products", add_products, 0, 10_000)
    _check_range("jpeg_quality", jpeg_quality, 1, 100)
    _check_difficulty(difficulty)
    root_path = Path(root)
    root_path.mkdir(parents=True, exist_ok=True)

    existing = 0
    for spec in _iter_catalogue(seed, difficulty):
        if not (root_path / spec.name).is_dir():
            break
        existing += 1
    base = max(existing, n_products)
    specs = catalogue(base + add_products, seed=seed, difficulty=difficulty)
    if plant_bad and len(specs) < 2:
        raise ValueError("plant_bad needs at least 2 products (one duplicate goes to another product)")

    total = len(specs) * images_per_product
    done = written = 0
    for spec in specs:
        folder = root_path / spec.name
        folder.mkdir(exist_ok=True)
        for i in range(images_per_product):
            data = _jpeg(render(spec, i, size=size, seed=seed), jpeg_quality)
            written += _write_if_changed(folder / _photo_name(spec, i), data)
            done += 1
            if progress is not None:
                progress(done, total)

    planted: dict[str, str] = {}
    duplicates: dict[str, str] = {}
    if plant_bad:
        files, planted, duplicates = _planted_files(specs, images_per_product, size, seed, jpeg_quality, root_path)
        for rel, data in files.items():
            _write_if_changed(root_path / rel, data)
    _log.info("synth: %d products in %s, %d photos written", len(specs), root_path, written)
    return SynthReport(
        root=str(root_path),
        products=[s.name for s in specs],
        new_products=[s.name for s in specs[base:]],
        images_written=written,
        planted=planted,
        duplicates=duplicates,
    )

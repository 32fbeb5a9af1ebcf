"""The synthetic catalogue: stable identities, deterministic photos, planted bad files."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageOps

from edgeloop.synth import (
    PLANTED_KINDS,
    PLANTED_USABLE,
    SynthReport,
    catalogue,
    generate,
    render,
)


def _small(root: Path, *, add_products: int = 0, progress: Callable[[int, int], None] | None = None) -> SynthReport:
    """Three products, three photos each, tiny: enough to exercise every code path quickly."""
    return generate(root, n_products=3, images_per_product=3, size=48, add_products=add_products, progress=progress)


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root: relative path -> (bytes, mtime_ns)."""
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthReport]:
    root = tmp_path_factory.mktemp("planted")
    return root, generate(root, n_products=3, images_per_product=3, size=64, plant_bad=True)


# --------------------------------------------------------------------------- catalogue


@pytest.mark.parametrize("difficulty", [0.0, 0.3, 1.0])
def test_catalogue_grows_by_appending(difficulty: float) -> None:
    assert catalogue(8, difficulty=difficulty)[:5] == catalogue(5, difficulty=difficulty)


def test_catalogue_depends_on_seed() -> None:
    assert catalogue(5, seed=0) != catalogue(5, seed=1)


def test_names_are_unique_folder_names() -> None:
    specs = catalogue(80, difficulty=1.0)
    names = [s.name for s in specs]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", n) for n in names)
    assert [s.index for s in specs] == list(range(80))


def test_difficulty_adds_close_variants() -> None:
    easy = catalogue(30, difficulty=0.0)
    hard = catalogue(30, difficulty=1.0)
    assert not any(s.variant_of for s in easy)
    by_name = {s.name: s for s in hard}
    variants = [s for s in hard if s.variant_of]
    assert len(variants) >= 5
    for v in variants:
        parent = by_name[v.variant_of or ""]
        assert (v.shape, v.kind) == (parent.shape, parent.kind)
        assert sum(abs(a - b) for a, b in zip(v.color, parent.color, strict=True)) < 150


def test_catalogue_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="difficulty"):
        catalogue(3, difficulty=1.5)
    with pytest.raises(ValueError, match="n_products"):
        catalogue(-1)


# --------------------------------------------------------------------------- render


def test_render_is_deterministic_and_varied() -> None:
    spec = catalogue(2)[1]
    a = render(spec, 3, size=64)
    assert (a.mode, a.size) == ("RGB", (64, 64))
    assert a.tobytes() == render(spec, 3, size=64).tobytes()
    assert a.tobytes() != render(spec, 4, size=64).tobytes()
    assert a.tobytes() != render(spec, 3, size=64, seed=1).tobytes()


def test_render_shows_the_same_scene_at_every_size() -> None:
    spec = catalogue(1)[0]
    small = render(spec, 5, size=64)
    large = render(spec, 5, size=128).resize((64, 64), Image.Resampling.BOX)
    diff = ImageChops.difference(small, large).convert("L")
    assert sum(i * n for i, n in enumerate(diff.histogram())) / (64 * 64) < 12


# --------------------------------------------------------------------------- generate


def test_generate_writes_class_folders_deterministically(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    report = _small(tmp_path / "a", progress=lambda done, total: calls.append((done, total)))
    _small(tmp_path / "b")
    a, b = _snapshot(tmp_path / "a"), _snapshot(tmp_path / "b")
    assert {k: v[0] for k, v in a.items()} == {k: v[0] for k, v in b.items()}
    expected = {f"{p}/{p}-{i:04d}.jpg" for p in report.products for i in range(3)}
    assert set(a) == expected  # and no temporary files left behind
    assert report.products == [s.name for s in catalogue(3)]
    assert report.images_written == 9 and report.new_products == [] and report.planted == {}
    assert calls[-1] == (9, 9) and len(calls) == 9
    with Image.open(tmp_path / "a" / sorted(a)[0]) as im:
        assert (im.format, im.size) == ("JPEG", (48, 48))


def test_generate_is_idempotent(tmp_path: Path) -> None:
    _small(tmp_path)
    before = _snapshot(tmp_path)
    again = _small(tmp_path)
    assert again.images_written == 0
    assert _snapshot(tmp_path) == before  # same bytes, not even rewritten


def test_generate_repairs_a_damaged_photo(tmp_path: Path) -> None:
    report = _small(tmp_path)
    victim = tmp_path / report.products[0] / f"{report.products[0]}-0001.jpg"
    good = victim.read_bytes()
    victim.write_bytes(b"oops")
    assert _small(tmp_path).images_written == 1
    assert victim.read_bytes() == good


def test_add_products_appends_and_leaves_old_files_alone(tmp_path: Path) -> None:
    first = _small(tmp_path)
    before = _snapshot(tmp_path)
    grown = _small(tmp_path, add_products=2)
    assert grown.products[:3] == first.products
    assert grown.new_products == grown.products[3:] == [s.name for s in catalogue(5)[3:]]
    assert grown.images_written == 6
    after = _snapshot(tmp_path)
    assert {k: after[k] for k in before} == before
    # Products already present count as the base, whatever n_products says.
    again = _small(tmp_path, add_products=1)
    assert again.new_products == [catalogue(6)[5].name]
    assert again.images_written == 3


def test_report_json_round_trips(tmp_path: Path) -> None:
    report = _small(tmp_path)
    assert SynthReport(**json.loads(report.to_json())) == report


def test_generate_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="images_per_product"):
        generate(tmp_path, images_per_product=0)
    with pytest.raises(ValueError, match="plant_bad"):
        generate(tmp_path, n_products=1, images_per_product=1, size=32, plant_bad=True)


# --------------------------------------------------------------------------- planted files


def test_planted_kinds_and_usability() -> None:
    assert len(set(PLANTED_KINDS)) == len(PLANTED_KINDS)
    assert set(PLANTED_USABLE) == set(PLANTED_KINDS)
    unusable = {k for k, ok in PLANTED_USABLE.items() if not ok}
    assert unusable == {"corrupt", "truncated", "not-image", "empty", "too-small"}


def test_every_kind_is_planted_across_folders(planted: tuple[Path, SynthReport]) -> None:
    root, report = planted
    assert sorted(report.planted.values()) == sorted(PLANTED_KINDS)
    assert all((root / rel).is_file() for rel in report.planted)
    assert len({rel.split("/")[0] for rel in report.planted}) >= 3
    assert {rel.split("/")[0] for rel in report.planted} <= set(report.products)


def _by_kind(planted: tuple[Path, SynthReport]) -> dict[str, Path]:
    root, report = planted
    return {kind: root / rel for rel, kind in report.planted.items()}


@pytest.mark.parametrize("kind", ["corrupt", "truncated", "not-image", "empty"])
def test_broken_files_do_not_decode(planted: tuple[Path, SynthReport], kind: str) -> None:
    with pytest.raises(OSError):  # UnidentifiedImageError is an OSError too
        with Image.open(_by_kind(planted)[kind]) as im:
            im.load()


def test_planted_file_properties(planted: tuple[Path, SynthReport]) -> None:
    f = _by_kind(planted)
    assert f["empty"].stat().st_size == 0
    assert f["corrupt"].read_bytes()[:2] == b"\xff\xd8"  # looks like a JPEG at first glance
    with Image.open(f["truncated"]) as im:
        assert im.format == "JPEG"  # the header is intact; the pixels are not
    with Image.open(f["too-small"]) as im:
        assert im.size == (8, 8)
    with Image.open(f["cmyk"]) as im:
        assert (im.format, im.mode) == ("JPEG", "CMYK")
        im.load()
    with Image.open(f["grey"]) as im:
        assert (im.format, im.mode) == ("JPEG", "L")
    with Image.open(f["palette-alpha"]) as im:
        assert (im.format, im.mode) == ("PNG", "P")
        assert "transparency" in im.info
        assert im.convert("RGBA").getchannel("A").getextrema()[0] == 0
    with Image.open(f["huge"]) as im:
        assert im.size == (4000, 3000)
    assert f["huge"].stat().st_size < 2_000_000
    with Image.open(f["exif-rotated"]) as im:
        assert im.getexif()[0x0112] == 6
        stored = im.size
        upright = ImageOps.exif_transpose(im)
    assert stored[0] < stored[1] and upright.size == (stored[1], stored[0])


def test_planted_duplicates_are_byte_copies(planted: tuple[Path, SynthReport]) -> None:
    root, report = planted
    kinds = {kind: rel for rel, kind in report.planted.items()}
    same, conflict = kinds["duplicate-same"], kinds["duplicate-conflict"]
    assert set(report.duplicates) == {same, conflict}
    for dup, src in report.duplicates.items():
        assert (root / dup).read_bytes() == (root / src).read_bytes()
        assert src not in report.planted
    assert same.split("/")[0] == report.duplicates[same].split("/")[0]
    assert conflict.split("/")[0] != report.duplicates[conflict].split("/")[0]


def test_planting_is_idempotent(planted: tuple[Path, SynthReport]) -> None:
    root, report = planted
    before = _snapshot(root)
    again = generate(root, n_products=3, images_per_product=3, size=64, plant_bad=True)
    assert (again.planted, again.duplicates, again.products) == (report.planted, report.duplicates, report.products)
    assert again.images_written == 0
    assert _snapshot(root) == before


# --------------------------------------------------------------------------- pinned output

# Digests of the generator's output, taken before edgeloop/synth.py became a package: a refactor
# must not move a pixel (datasets, their splits and every figure measured on them depend on it).
# The photos round to uint8 and JPEG, so they came out the same with NumPy's SIMD dispatch
# disabled (NPY_DISABLE_CPU_FEATURES) although float32 sin differs there in the last bits.
PLANTED_DIGEST = "e4da764a1c5fcf18b0238e320ac407aaaf8be198cea871376c658e482c353b1e"
RENDER_DIGEST = "3a18586e4b0a8a8568d037c54c52c8ab1b7515c61195fe84bc7a0d36c4e861c1"


def test_planted_folder_matches_the_pinned_digest(planted: tuple[Path, SynthReport]) -> None:
    root, _ = planted
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    assert digest.hexdigest() == PLANTED_DIGEST


def test_renders_match_the_pinned_digest() -> None:
    digest = hashlib.sha256()
    for spec in catalogue(4, seed=3, difficulty=0.6):
        digest.update(repr(spec).encode() + render(spec, 1, size=96, seed=3).tobytes())
    assert digest.hexdigest() == RENDER_DIGEST

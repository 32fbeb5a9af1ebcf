"""Validation and preparation of single photos with Pillow (no Beam, no TF)."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from pipelines.ingest.images import BadImage, ImageLimits, Reason, prepare_image, probe_image, target_size


def photo(size: tuple[int, int] = (120, 80), mode: str = "RGB", fmt: str = "JPEG", **save: object) -> bytes:
    """A noisy picture (so JPEG has real entropy-coded data to truncate)."""
    rng = np.random.default_rng(sum(size))
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    im = Image.fromarray(arr, "RGB")
    if mode != "RGB":
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, fmt, **save)
    return buf.getvalue()


def rejected(data: bytes, limits: ImageLimits | None = None) -> Reason:
    with pytest.raises(BadImage) as info:
        probe_image(data, limits or ImageLimits())
    return info.value.reason


def test_probe_reports_identity_and_size() -> None:
    data = photo((120, 80))
    probe = probe_image(data, ImageLimits())
    assert probe.sha256 == hashlib.sha256(data).hexdigest()
    assert (probe.format, probe.mode, probe.width, probe.height, probe.orientation) == ("JPEG", "RGB", 120, 80, 1)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", Reason.EMPTY),
        (b"a note saved as .jpg\n" * 5, Reason.NOT_AN_IMAGE),
        (b"\xff\xd8\xff\xe0" + bytes(200), Reason.CORRUPT),
        (photo((64, 64))[:1500], Reason.TRUNCATED),
        (photo((64, 64))[:600], Reason.TRUNCATED),
        (photo((16, 16)), Reason.TOO_SMALL),
    ],
    ids=["empty", "text", "corrupt-header", "truncated-data", "truncated-header", "too-small"],
)
def test_unusable_files_are_rejected_with_a_reason(data: bytes, reason: Reason) -> None:
    assert rejected(data) == reason


def test_size_caps() -> None:
    data = photo((100, 100))
    assert rejected(data, ImageLimits(max_bytes=len(data) - 1)) == Reason.TOO_LARGE_BYTES
    assert rejected(data, ImageLimits(max_pixels=100 * 100 - 1)) == Reason.TOO_MANY_PIXELS


def test_truncated_png_is_caught_too() -> None:
    data = photo((64, 64), fmt="PNG")
    assert rejected(data[: len(data) // 2]) in (Reason.TRUNCATED, Reason.CORRUPT)


def test_exif_orientation_swaps_the_upright_size() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = photo((120, 80), exif=exif.tobytes())
    probe = probe_image(data, ImageLimits())
    assert (probe.orientation, probe.width, probe.height) == (6, 80, 120)
    prepared = prepare_image(data, max_side=None, quality=90)
    assert prepared.reencoded and (prepared.width, prepared.height) == (80, 120)
    decoded = Image.open(io.BytesIO(prepared.jpeg))
    assert decoded.size == (80, 120) and decoded.getexif().get(0x0112) is None  # rotation applied, tag gone


def test_a_plain_rgb_jpeg_is_kept_byte_for_byte() -> None:
    data = photo((120, 80))
    prepared = prepare_image(data, max_side=200, quality=90)
    assert not prepared.reencoded and prepared.jpeg == data and (prepared.width, prepared.height) == (120, 80)


def test_resize_keeps_the_aspect_and_only_shrinks() -> None:
    data = photo((400, 200))
    prepared = prepare_image(data, max_side=100, quality=85)
    assert prepared.reencoded and (prepared.width, prepared.height) == (100, 50)
    assert Image.open(io.BytesIO(prepared.jpeg)).size == (100, 50)
    assert target_size(50, 20, 100) == (50, 20)
    assert target_size(300, 1000, 100) == (30, 100)


@pytest.mark.parametrize("mode", ["CMYK", "L", "P", "RGBA", "LA", "I;16"])
def test_every_mode_becomes_rgb_jpeg(mode: str) -> None:
    if mode in ("CMYK", "L"):
        data = photo((64, 48), mode=mode)
    else:
        im = Image.open(io.BytesIO(photo((64, 48), fmt="PNG")))
        sixteen_bit = Image.fromarray(np.asarray(im.convert("L"), dtype=np.uint16) * 257)
        im = sixteen_bit if mode == "I;16" else im.convert(mode)
        buf = io.BytesIO()
        im.save(buf, "PNG")
        data = buf.getvalue()
    probe_image(data, ImageLimits())
    prepared = prepare_image(data, max_side=None, quality=90)
    out = Image.open(io.BytesIO(prepared.jpeg))
    assert (out.format, out.mode, out.size) == ("JPEG", "RGB", (64, 48))


def test_transparent_background_becomes_white() -> None:
    im = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    im.paste((200, 0, 0, 255), (10, 10, 30, 30))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    out = Image.open(io.BytesIO(prepare_image(buf.getvalue(), max_side=None, quality=95).jpeg)).convert("RGB")
    corner, centre = out.getpixel((1, 1)), out.getpixel((20, 20))
    assert isinstance(corner, tuple) and isinstance(centre, tuple)
    assert min(corner) > 240 and centre[0] > 180 and centre[1] < 40


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    arr = np.full((40, 40), 32768, dtype=np.uint16)  # mid grey in 16 bits
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    out = Image.open(io.BytesIO(prepare_image(buf.getvalue(), max_side=None, quality=95).jpeg))
    value = out.getpixel((20, 20))
    assert isinstance(value, tuple) and 120 < value[0] < 136

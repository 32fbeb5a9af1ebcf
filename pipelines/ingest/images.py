"""Validate and prepare one photo with Pillow: pure functions, no Beam, no TensorFlow.

`probe_image` decides whether a file is usable and computes its identity (sha256 of
the original bytes); `prepare_image` turns it into the JPEG that goes into the
Example. Both raise `BadImage` with a `Reason` for dead letters.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import io
import warnings

from PIL import Image, UnidentifiedImageError

from edgeloop import examples

# EXIF orientation → the transpose that displays the image upright.
_ORIENTATION_TAG = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Signatures of formats people photograph in; a file that starts like one but does
# not decode is "corrupt", anything else that does not decode is "not-an-image".
_MAGIC = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"RIFF",  # WebP
    b"II*\x00",  # TIFF
    b"MM\x00*",
    b"BM",
)


class Reason(enum.StrEnum):
    """Why a file went to the dead letters."""

    EMPTY = "empty"
    TOO_LARGE_BYTES = "too-large-bytes"
    NOT_AN_IMAGE = "not-an-image"
    CORRUPT = "corrupt"
    TRUNCATED = "truncated"
    TOO_MANY_PIXELS = "too-many-pixels"
    TOO_SMALL = "too-small"
    NO_LABEL = "no-label"
    MISSING = "missing"
    UNREADABLE = "unreadable"
    CHANGED = "changed"


class BadImage(Exception):
    """A file that cannot become an example; `reason` is the dead-letter category."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class ImageLimits:
    """What a usable photo looks like."""

    min_side: int = 32
    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 50_000_000


@dataclasses.dataclass(frozen=True)
class ImageProbe:
    """A usable photo: its identity and upright size."""

    sha256: str
    format: str
    mode: str
    width: int
    height: int
    orientation: int


@dataclasses.dataclass(frozen=True)
class PreparedImage:
    """The JPEG bytes that go into the Example, and their size."""

    jpeg: bytes
    width: int
    height: int
    reencoded: bool

    def example(self, *, label: int, text: str, sha256: str, source: str) -> bytes:
        """The serialized Example of this photo (`edgeloop.examples`)."""
        return examples.encode(
            examples.ImageExample(
                jpeg=self.jpeg,
                height=self.height,
                width=self.width,
                label=label,
                text=text,
                sha256=sha256,
                source=source,
            )
        )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_size(size: int, limits: ImageLimits) -> None:
    """Reject by byte size alone, before reading the file."""
    if size == 0:
        raise BadImage(Reason.EMPTY, "the file has zero bytes")
    if size > limits.max_bytes:
        raise BadImage(Reason.TOO_LARGE_BYTES, f"{size} bytes is over the {limits.max_bytes}-byte cap (--max-bytes)")


def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Our own pixel cap applies; Pillow's bomb warning would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise BadImage(Reason.TOO_MANY_PIXELS, str(exc)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if data.startswith(_MAGIC):
            if "truncated" in str(exc).lower():
                raise BadImage(Reason.TRUNCATED, f"the file ends inside its header ({exc})") from None
            why = "Pillow cannot identify it" if isinstance(exc, UnidentifiedImageError) else str(exc)
            raise BadImage(Reason.CORRUPT, f"starts like an image but cannot be parsed ({why})") from None
        raise BadImage(Reason.NOT_AN_IMAGE, f"not a format Pillow can read ({_kind(data)})") from None


def _kind(data: bytes) -> str:
    head = data[:16]
    if head.isascii() and head.decode("ascii", "replace").isprintable():
        return "looks like text"
    return f"starts with {head[:8].hex()}"


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except (OSError, SyntaxError, ValueError, TypeError):  # unreadable EXIF is not fatal for the pixels
        return 1
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def _decode(im: Image.Image, data: bytes) -> None:
    """Decode every pixel, turning Pillow's many failure modes into `BadImage`."""
    try:
        im.load()
    except OSError as exc:
        reason = Reason.TRUNCATED if "truncated" in str(exc).lower() else Reason.CORRUPT
        raise BadImage(reason, str(exc)) from None
    except (SyntaxError, ValueError, IndexError, TypeError, EOFError, MemoryError) as exc:
        raise BadImage(Reason.CORRUPT, f"{type(exc).__name__}: {exc}") from None


def _ends_whole(fmt: str, data: bytes) -> bool:
    """Whether the file visibly ends where its format ends: a JPEG's EOI marker, a PNG's IEND chunk.

    Truncation, the common failure (interrupted uploads and copies), removes that ending.
    Entropy-coded JPEG data never contains FF D9 (0xFF is always stuffed), so finding it at
    the end is meaningful; a few trailing padding bytes are tolerated.
    """
    tail = data[-64:].rstrip(b"\x00\r\n ")
    if fmt in ("JPEG", "MPO"):
        return tail.endswith(b"\xff\xd9")
    if fmt == "PNG":
        return tail.endswith(b"IEND\xaeB`\x82")
    return False


def probe_image(data: bytes, limits: ImageLimits) -> ImageProbe:
    """Hash and identify `data` and check it decodes; raises `BadImage` if it cannot become an example.

    A JPEG or PNG that ends with its end marker is accepted on its header (the job decodes
    every pixel when it writes the example, and rejects it there if need be); any other
    file is decoded now, JPEGs at 1/8 scale: libjpeg still reads every entropy-coded
    byte, so truncation and broken data are caught for a fraction of a full decode.
    """
    check_size(len(data), limits)
    digest = sha256_hex(data)
    im = _open(data)
    width, height = im.size
    if width * height > limits.max_pixels:
        raise BadImage(
            Reason.TOO_MANY_PIXELS, f"{width}x{height} is over the {limits.max_pixels}-pixel cap (--max-pixels)"
        )
    if min(width, height) < limits.min_side:
        raise BadImage(Reason.TOO_SMALL, f"{width}x{height} has a side under {limits.min_side} px (--min-side)")
    orientation = _orientation(im)
    fmt, mode = im.format or "unknown", im.mode
    if not _ends_whole(fmt, data):
        if fmt == "JPEG":
            im.draft(im.mode, (max(1, width // 8), max(1, height // 8)))
        _decode(im, data)
    if orientation >= 5:  # 5-8 turn the picture a quarter: the upright size is swapped
        width, height = height, width
    return ImageProbe(digest, fmt, mode, width, height, orientation)


def target_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """The size after shrinking so the longer side is at most `max_side` (never enlarged)."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode == "RGB":
        return im
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # Cut-outs on a transparent background: white is what a shop photo would show.
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greys: scale to 8 bits instead of clipping everything above 255 to white.
        return im.convert("I").point(lambda v: v / 257).convert("L").convert("RGB")
    return im.convert("RGB")  # CMYK, YCbCr, palette, greys, 1-bit


def prepare_image(data: bytes, *, max_side: int | None, quality: int) -> PreparedImage:
    """Upright RGB JPEG with the longer side at most `max_side`.

    A baseline RGB JPEG that needs no rotation or shrinking is kept byte for byte:
    re-encoding would only lose quality and time.
    """
    im = _open(data)
    orientation = _orientation(im)
    width, height = im.size
    upright = (height, width) if orientation >= 5 else (width, height)
    target = target_size(*upright, max_side)
    if im.format == "JPEG" and im.mode == "RGB" and orientation == 1 and target == upright:
        return PreparedImage(data, width, height, reencoded=False)
    if im.format == "JPEG" and target != upright:
        # Let libjpeg shrink by 1/2, 1/4 or 1/8 while decoding, never below the target.
        stored_target = (target[1], target[0]) if orientation >= 5 else target
        im.draft(im.mode, stored_target)
    _decode(im, data)
    if orientation != 1:
        im = im.transpose(_TRANSPOSE[orientation])
    im = _to_rgb(im)
    if im.size != target:
        im = im.resize(target, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return PreparedImage(buf.getvalue(), im.width, im.height, reencoded=True)


__all__ = [
    "BadImage",
    "ImageLimits",
    "ImageProbe",
    "PreparedImage",
    "Reason",
    "check_size",
    "prepare_image",
    "probe_image",
    "sha256_hex",
    "target_size",
]

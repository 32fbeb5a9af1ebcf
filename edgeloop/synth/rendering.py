"""Rendering: one photo of a product on a varied table under varied light (`render`)."""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from edgeloop.synth.products import (
    _CONTAINER_SHAPES,
    _FLAT_SHAPES,
    _SCENTS,
    Color,
    ProductSpec,
    _check_range,
    _choice,
    _clamp,
    _jitter,
    _luma,
    _rng,
    _substream,
)

F32 = npt.NDArray[np.float32]

_SKIN: tuple[Color, ...] = (
    (250, 215, 185),
    (230, 185, 155),
    (200, 150, 115),
    (150, 100, 70),
    (100, 68, 48),
)
_TABLE: tuple[Color, ...] = (
    (236, 235, 230),
    (200, 200, 198),
    (120, 120, 124),
    (60, 60, 64),
    (28, 28, 30),
    (215, 200, 175),
    (200, 160, 115),
    (110, 75, 50),
    (90, 100, 110),
    (235, 205, 205),
    (200, 215, 230),
    (200, 225, 210),
)
_WOOD: tuple[Color, ...] = ((205, 165, 120), (170, 120, 80), (120, 80, 52), (225, 200, 160))


@lru_cache(maxsize=1024)
def _spec_key(spec: ProductSpec) -> str:
    return hashlib.blake2b(repr(spec).encode(), digest_size=16).hexdigest()


@lru_cache(maxsize=16)
def _grid(n: int) -> tuple[F32, F32]:
    """Pixel-centre coordinates in [-1, 1]: x as a (1, n) row and y as an (n, 1) column.

    Expressions in x and y broadcast to (n, n) only when they must, which keeps most
    arithmetic one-dimensional.
    """
    c = ((np.arange(n, dtype=np.float32) + 0.5) / n * 2 - 1).astype(np.float32)
    x, y = c[None, :].copy(), c[:, None].copy()
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


@lru_cache(maxsize=8)
def _radius2(n: int) -> F32:
    x, y = _grid(n)
    r2 = x * x + y * y
    r2.flags.writeable = False
    return r2


@lru_cache(maxsize=16)
def _noise_tile(n: int, sigma: int) -> F32:
    tile = np.random.default_rng(1234).standard_normal((3, n + 64, n + 64), dtype=np.float32)
    tile *= np.float32(sigma)
    tile.flags.writeable = False
    return tile


def _noise(rng: np.random.Generator, n: int, sigma: int) -> F32:
    """Gaussian noise (3, n, n): a shifted window of a cached field (much cheaper than fresh
    noise), except for large images, whose fields would be too big to keep around."""
    ox, oy = rng.integers(0, 64, 2)
    if n > 512:
        return _substream(rng).standard_normal((3, n, n), dtype=np.float32) * np.float32(sigma)
    return _noise_tile(n, sigma)[:, oy : oy + n, ox : ox + n]


@lru_cache(maxsize=64)
def _font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(6, px))


def _lowfreq(rng: np.random.Generator, wh: tuple[int, int], cells: int) -> F32:
    """Smooth noise in roughly [-1.5, 1.5], ``cells`` blobs across, of size ``wh`` (width, height)."""
    small = Image.fromarray(rng.standard_normal((cells, cells)).astype(np.float32), mode="F")
    return np.asarray(small.resize(wh, Image.Resampling.BICUBIC), dtype=np.float32)


def _blur(a: Image.Image, radius: float) -> Image.Image:
    """Gaussian blur; wide ones are done at a quarter of the resolution (Pillow's blur is slow)."""
    if radius < 0.05:
        return a
    if radius < 3 or min(a.size) < 16:
        return a.filter(ImageFilter.GaussianBlur(radius))
    small = a.reduce(4).filter(ImageFilter.GaussianBlur(radius / 4))
    return small.resize(a.size, Image.Resampling.BILINEAR)


def _soften(a: F32, sigma: float) -> F32:
    """Separable [w, 1-2w, w] blur of a planar image, repeated to reach ``sigma`` (cheaper than Pillow)."""
    passes = max(1, math.ceil(sigma * sigma / 0.5))
    w = np.float32(min(0.25, sigma * sigma / (2 * passes)))
    tmp = np.empty_like(a)
    for _ in range(passes):
        for axis in (1, 2):
            head = (slice(None),) * axis + (slice(None, -1),)
            tail = (slice(None),) * axis + (slice(1, None),)
            first = (slice(None),) * axis + (slice(0, 1),)
            last = (slice(None),) * axis + (slice(-1, None),)
            out = a * (1 - 2 * w)
            out[tail] += np.multiply(a[head], w, out=tmp[head])
            out[head] += np.multiply(a[tail], w, out=tmp[tail])
            out[first] += a[first] * w  # the borders stand in for their missing neighbour
            out[last] += a[last] * w
            a = out
    return a


def _arr(im: Image.Image) -> F32:
    return np.asarray(im, dtype=np.float32) * np.float32(1 / 255)


def _smooth(a: npt.NDArray[np.floating], lo: float, hi: float) -> F32:
    t: F32 = np.clip((a - lo) / np.float32(hi - lo), 0, 1).astype(np.float32, copy=False)
    return t * t * (3 - 2 * t)


def _fill(color: Color, h: int, w: int) -> F32:
    """A planar (3, h, w) image of one colour.

    Images are planar throughout: numpy broadcasts (h, w) masks over a leading channel
    axis several times faster than over a trailing one.
    """
    a = np.empty((3, h, w), dtype=np.float32)
    a[:] = np.asarray(color, dtype=np.float32)[:, None, None]
    return a


def _lerp(a: F32, color: Color, w: npt.NDArray[np.floating]) -> F32:
    """Blend planar image ``a`` towards ``color`` by weight ``w`` (h, w), in place; returns ``a``."""
    t = np.asarray(color, dtype=np.float32)[:, None, None] - a
    t *= w
    a += t
    return a


def _to_image(a: F32, mode: str = "RGB") -> Image.Image:
    """Planar float (3 or 4, h, w) in 0..255 to a Pillow image (clips ``a`` in place)."""
    u8 = np.clip(a, 0, 255, out=a).astype(np.uint8)
    return Image.merge(mode, [Image.fromarray(c) for c in u8])


def _from_image(im: Image.Image) -> F32:
    return np.ascontiguousarray(np.asarray(im).transpose(2, 0, 1), dtype=np.float32)


def _draw_text(draw: ImageDraw.ImageDraw, text: str, box: tuple[float, float, float, float], fill: int) -> None:
    x0, y0, x1, y1 = box
    if not text or x1 - x0 < 6 or y1 - y0 < 4:
        return
    l, t, r, b = _font(40).getbbox(text)
    scale = min(0.86 * (x1 - x0) / max(1, r - l), 0.62 * (y1 - y0) / max(1, b - t))
    font = _font(int(40 * scale))
    if isinstance(font, ImageFont.FreeTypeFont):
        draw.text(((x0 + x1) / 2, (y0 + y1) / 2), text, font=font, fill=fill, anchor="mm")
    else:  # Pillow built without FreeType: a fixed-size bitmap font, centred by hand
        l, t, r, b = font.getbbox(text)
        draw.text(((x0 + x1 - r - l) / 2, (y0 + y1 - b - t) / 2), text, font=font, fill=fill)


class _Layers:
    """Product-local masks drawn at twice the resolution, reduced later (cheap antialiasing)."""

    def __init__(self, q: int) -> None:
        self.q = q
        self.body, self.cap, self.label, self.relief, self.ink = (Image.new("L", (q, q)) for _ in range(5))


def _draw_shape(spec: ProductSpec, lay: _Layers) -> None:
    """Silhouette, cap, label, relief (embossing) and ink masks for ``spec``."""
    q = lay.q
    c = q / 2
    if spec.aspect >= 1:
        w = 0.92 * q
        h = w / spec.aspect
    else:
        h = 0.92 * q
        w = h * spec.aspect
    x0, y0, x1, y1 = c - w / 2, c - h / 2, c + w / 2, c + h / 2
    body, cap, relief = ImageDraw.Draw(lay.body), ImageDraw.Draw(lay.cap), ImageDraw.Draw(lay.relief)
    line = max(1, int(q * 0.012))
    shape, style = spec.shape, spec.style

    if shape == "bar":
        body.rounded_rectangle((x0, y0, x1, y1), radius=min(w, h) * (0.08, 0.18, 0.3)[style], fill=255)
        if style == 1:  # a pressed border, as from a mould
            m = min(w, h) * 0.12
            relief.rounded_rectangle((x0 + m, y0 + m, x1 - m, y1 - m), radius=m, outline=255, width=line)
        _draw_text(relief, spec.text, (x0 + 0.15 * w, y0 + 0.2 * h, x1 - 0.15 * w, y1 - 0.2 * h), 255)
    elif shape == "round-bar":
        body.ellipse((x0, y0, x1, y1), fill=255)
        if style != 0:
            m = min(w, h) * 0.1
            relief.ellipse((x0 + m, y0 + m, x1 - m, y1 - m), outline=255, width=line)
        _draw_text(relief, spec.text, (x0 + 0.2 * w, y0 + 0.25 * h, x1 - 0.2 * w, y1 - 0.25 * h), 255)
    elif shape == "bath-bomb":
        body.ellipse((x0, y0, x1, y1), fill=255)
        if style == 1:  # the seam between the two mould halves
            relief.line((x0, c, x1, c), fill=255, width=line)
    elif shape == "heart":
        r = w / 4
        body.ellipse((x0, y0, c, y0 + 2 * r), fill=255)
        body.ellipse((c, y0, x1, y0 + 2 * r), fill=255)
        body.polygon([(x0 + 0.02 * w, y0 + 1.25 * r), (x1 - 0.02 * w, y0 + 1.25 * r), (c, y1)], fill=255)
        _draw_text(relief, spec.text, (x0 + 0.2 * w, y0 + 0.3 * h, x1 - 0.2 * w, y0 + 0.62 * h), 255)
    elif shape == "puck":
        sides = (6, 8, 48)[style]
        body.regular_polygon((c, c, w / 2), sides, fill=255)
        relief.regular_polygon((c, c, w * 0.38), sides, outline=255, width=line)
        _draw_text(relief, spec.text, (x0 + 0.22 * w, y0 + 0.3 * h, x1 - 0.22 * w, y1 - 0.3 * h), 255)
    elif shape == "cone":
        e = 0.07 * h
        top = y0 + (0.12 * h if style == 2 else 0)
        body.polygon([(c - (0.1 * w if style == 2 else 0), top), (c + (0.1 * w if style == 2 else 0), top),
                      (x1, y1 - e), (x0, y1 - e)], fill=255)  # fmt: skip
        body.ellipse((x0, y1 - 2 * e, x1, y1), fill=255)
        if style == 2:
            body.ellipse((c - 0.1 * w, top - 0.04 * h, c + 0.1 * w, top + 0.04 * h), fill=255)
        if style == 1:  # ridged rings
            for k in range(1, 5):
                yy = y0 + h * k / 5.2
                relief.line((x0, yy, x1, yy), fill=255, width=line)
    elif shape == "bottle":
        cap_h = (0.12, 0.2, 0.15)[style] * h
        neck_h = 0.05 * h
        body_top = y0 + cap_h + neck_h
        neck_w = 0.4 * w
        body.rounded_rectangle((x0, body_top, x1, y1), radius=0.45 * w, fill=255)
        body.rounded_rectangle((x0, body_top + 0.3 * w, x1, y1), radius=0.1 * w, fill=255)
        body.rectangle((c - neck_w / 2, y0 + cap_h - 1, c + neck_w / 2, body_top + 0.2 * w), fill=255)
        if style == 0:  # flip cap
            cap.rounded_rectangle((c - 0.3 * w, y0, c + 0.3 * w, y0 + cap_h), radius=0.08 * w, fill=255)
        elif style == 1:  # pump
            cap.rectangle((c - 0.25 * w, y0 + 0.55 * cap_h, c + 0.25 * w, y0 + cap_h), fill=255)
            cap.rectangle((c - 0.06 * w, y0 + 0.2 * cap_h, c + 0.06 * w, y0 + 0.6 * cap_h), fill=255)
            cap.rounded_rectangle((c - 0.22 * w, y0, c + 0.4 * w, y0 + 0.25 * cap_h), radius=0.04 * w, fill=255)
        else:  # screw cap with grip ridges
            cap.rounded_rectangle((c - 0.27 * w, y0, c + 0.27 * w, y0 + cap_h), radius=0.04 * w, fill=255)
            for k in range(-3, 4):
                xx = c + k * 0.07 * w
                relief.line((xx, y0 + 2, xx, y0 + cap_h - 2), fill=255, width=line)
        body_h = y1 - body_top
        lbox = (x0 + 0.07 * w, body_top + 0.28 * body_h, x1 - 0.07 * w, y1 - 0.1 * body_h)
        _draw_label(spec, lay, lbox)
    elif shape == "jar":
        lid_h = (0.26, 0.16, 0.22)[style] * h
        body.rounded_rectangle((x0 + 0.03 * w, y0 + lid_h * 0.8, x1 - 0.03 * w, y1), radius=0.07 * w, fill=255)
        if style == 2:
            cap.ellipse((x0 + 0.05 * w, y0 - 0.1 * h, x1 - 0.05 * w, y0 + 0.6 * lid_h), fill=255)
        cap.rounded_rectangle((x0, y0 + (0.3 * lid_h if style == 2 else 0), x1, y0 + lid_h), radius=0.04 * w, fill=255)
        body_h = y1 - y0 - lid_h
        lbox = (x0 + 0.03 * w, y0 + lid_h + 0.18 * body_h, x1 - 0.03 * w, y1 - 0.14 * body_h)
        _draw_label(spec, lay, lbox)
    else:  # tube, standing on its cap
        cap_h = 0.12 * h
        pts_l, pts_r = [], []
        for k in range(9):
            t = k / 8
            half = w / 2 * (1.0 - 0.42 * t**1.6)
            yy = y0 + t * (h - cap_h + 2)
            pts_l.append((c - half, yy))
            pts_r.append((c + half, yy))
        body.polygon(pts_r + pts_l[::-1], fill=255)
        cap_w = (0.6, 0.66, 0.52)[style] * w
        cap.rounded_rectangle((c - cap_w / 2, y1 - cap_h, c + cap_w / 2, y1), radius=0.06 * w, fill=255)
        for k in range(1, 4):  # the crimped end
            yy = y0 + k * 0.018 * h
            relief.line((x0, yy, x1, yy), fill=255, width=line)
        lbox = (c - 0.4 * w, y0 + 0.2 * h, c + 0.4 * w, y0 + 0.62 * h)
        _draw_label(spec, lay, lbox)


def _draw_label(spec: ProductSpec, lay: _Layers, box: tuple[float, float, float, float]) -> None:
    x0, y0, x1, y1 = box
    if spec.texture != "no-label":
        ImageDraw.Draw(lay.label).rectangle(box, fill=255)
    # Containers carry the text sideways when the label is tall and narrow, as real bottles do.
    bw, bh = x1 - x0, y1 - y0
    if bh > 1.6 * bw and len(spec.text) > 3:
        side = Image.new("L", (int(bh), int(bw)))
        _draw_text(ImageDraw.Draw(side), spec.text, (0, bw * 0.1, bh, bw * 0.9), 255)
        lay.ink.paste(255, (int(x0), int(y0)), side.rotate(90, expand=True))
    else:
        _draw_text(ImageDraw.Draw(lay.ink), spec.text, (x0, y0 + 0.15 * bh, x1, y1 - 0.15 * bh), 255)


def _albedo(spec: ProductSpec, rng: np.random.Generator, p: int, x: F32, y: F32, cap: F32, label: F32, ink: F32) -> F32:
    """Surface colour (3, h, w) before lighting, on a crop of the p x p canvas at coordinates ``x``, ``y``."""
    hh, ww = y.shape[0], x.shape[1]
    look = _rng("look", spec.name, spec.texture, spec.style)  # per product: the class's texture
    # How many numbers the texture draws depends on the size, so it draws from its own
    # stream: the rest of the photo then comes out the same at every size.
    rng = _substream(rng)
    a = _fill(spec.color, hh, ww)
    # Gentle mottling; a product of two smooth 1-D curves is plenty for it and costs nothing.
    knots = np.linspace(0, 1, 6)
    fx = np.interp(np.linspace(0, 1, ww), knots, rng.normal(0, 0.05, 6)).astype(np.float32)
    fy = np.interp(np.linspace(0, 1, hh), knots, rng.normal(0, 0.05, 6)).astype(np.float32)
    a *= (fy[:, None] + 1) * (fx[None, :] + 1)
    tex = spec.texture
    if tex == "speckle":
        # Round speckles in two colours, drawn fresh on each photo (each bomb is its own).
        radius = p * float(look.uniform(0.012, 0.022))
        count = int(look.integers(35, 90) * ww * hh / (p * p))
        dots = [Image.new("L", (ww, hh)), Image.new("L", (ww, hh))]
        draws = [ImageDraw.Draw(d) for d in dots]
        xy = rng.uniform(0, 1, (count, 2)) * (ww, hh)
        rr = radius * rng.uniform(0.6, 1.4, count)
        which = rng.random(count) < 0.3
        for (cx, cy), r, second in zip(xy.tolist(), rr.tolist(), which.tolist(), strict=True):
            draws[int(second)].ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        a = _lerp(a, spec.accent, _arr(dots[0]))
        a = _lerp(a, spec.label, _arr(dots[1]))
    elif tex == "glitter":  # single bright grains
        count = int(look.integers(250, 500) * ww * hh / (p * p))
        marks = np.zeros(hh * ww, dtype=np.float32)
        marks[rng.integers(0, hh * ww, count)] = 1
        a = _lerp(a, (255, 248, 225), marks.reshape(hh, ww))
    elif tex == "flecks":  # small dark bits: oats, herbs, seeds
        count = int(look.integers(60, 140) * ww * hh / (p * p))
        im = Image.new("L", (ww, hh))
        draw = ImageDraw.Draw(im)
        r = max(0.7, p * 0.008)
        for cx, cy, e in zip(*(rng.uniform(0, 1, (3, count)) * [[ww], [hh], [2]]).tolist(), strict=True):
            draw.ellipse((cx - r * e, cy - r, cx + r * e, cy + r), fill=230)
        a = _lerp(a, _clamp(np.asarray(spec.label) * 0.45), _arr(im))
    elif tex == "swirl":
        f1, f2, amp = look.uniform(1.5, 3), look.uniform(1, 2.5), look.uniform(1.5, 3)
        ph = rng.uniform(0, 6.3, 2)
        t = np.sin(f1 * np.pi * x + amp * np.sin(f2 * np.pi * y + ph[0]) + ph[1])
        a = _lerp(a, spec.accent, _smooth(t, 0.45, 0.8))
    elif tex == "layers":
        n_bands = look.uniform(2.5, 5)
        wobble = 0.05 * np.sin(5 * x + rng.uniform(0, 6.3))
        band = np.floor((y + wobble + 1) * n_bands) % 2
        a = _lerp(a, spec.accent, band.astype(np.float32))
        a = _lerp(a, spec.label, (y < -0.5 + 0.05 * np.sin(7 * x)).astype(np.float32))
    elif tex == "marble":
        f, ang = look.uniform(1.5, 3), look.uniform(0, np.pi)
        warp = _lowfreq(rng, (ww, hh), 4)
        v = np.abs(np.sin(f * np.pi * (x * math.cos(ang) + y * math.sin(ang)) + 1.2 * warp))
        a = _lerp(a, spec.accent, _smooth(0.16 - v, 0.0, 0.12))
    elif tex == "two-tone":
        ang = look.uniform(-0.5, 0.5)
        edge = y * math.cos(ang) + x * math.sin(ang) + 0.06 * np.sin(9 * x + rng.uniform(0, 6.3))
        a = _lerp(a, spec.accent, _smooth(edge, -0.04, 0.04))
    if spec.shape in _CONTAINER_SHAPES:
        lab = _fill(spec.label, hh, ww)
        if tex == "band-label":
            lab = _lerp(lab, spec.accent, (np.abs(y - look.uniform(-0.1, 0.2)) < 0.05).astype(np.float32))
        elif tex == "striped-label":
            lab = _lerp(lab, spec.accent, (np.sin(x * look.uniform(25, 45) + y * 10) > 0.55).astype(np.float32))
        elif tex == "dotted-label":
            dots_m = np.sin(x * 40) * np.sin(y * 40) > 0.7
            lab = _lerp(lab, spec.accent, dots_m.astype(np.float32))
        a += (lab - a) * label
        ink_color = (25, 25, 28) if _luma(spec.label) > 110 else (240, 240, 235)
        if tex == "no-label":
            ink_color = spec.label
        a = _lerp(a, ink_color, ink)
        a = _lerp(a, spec.accent, cap)
    return a


def _normals(h: F32) -> tuple[F32, F32, F32]:
    """Unit surface normals (nx, ny, nz) of a height field in pixels."""
    gy, gx = np.gradient(h)
    nz = 1 / np.sqrt(gx * gx + gy * gy + 1)
    gx *= -nz
    gy *= -nz
    return gx, gy, nz


def _shade(
    normals: tuple[F32, F32, F32], az: float, el: float, ambient: float, ks: float, sharpness: int
) -> tuple[F32, F32 | None]:
    """Lambert + Blinn-Phong: (diffuse factor, specular or None), a flat top facing up gets 1."""
    nx, ny, nz = normals
    lx, ly, lz = math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)
    ndotl = nx * np.float32(lx)
    ndotl += ny * np.float32(ly)
    ndotl += nz * np.float32(lz)
    np.clip(ndotl, 0, None, out=ndotl)
    ndotl *= np.float32((1 - ambient) / lz)
    ndotl += np.float32(ambient)
    if ks <= 0:
        return ndotl, None
    hx, hy, hz = lx, ly, lz + 1
    hn = math.sqrt(hx * hx + hy * hy + hz * hz)
    ndoth = nx * np.float32(hx / hn)
    ndoth += ny * np.float32(hy / hn)
    ndoth += nz * np.float32(hz / hn)
    np.clip(ndoth, 0, 1, out=ndoth)
    for _ in range(sharpness):  # shininess 2**sharpness; squaring is much cheaper than pow
        ndoth *= ndoth
    ndoth *= np.float32(ks * 255)
    return ndotl, ndoth


@dataclass(frozen=True)
class _Silhouette:
    """One product's masks at one canvas size, cropped to the product; arrays are read-only."""

    box: tuple[int, int, int, int]
    alpha: F32
    body: F32
    cap: F32
    label: F32
    ink: F32
    relief: F32 | None
    normals: tuple[F32, F32, F32]


def _frozen(a: npt.NDArray[np.floating]) -> F32:
    out = np.ascontiguousarray(a, dtype=np.float32)
    out.flags.writeable = False
    return out


def _silhouette(spec: ProductSpec, p: int) -> _Silhouette:
    """Drawing is deterministic in (spec, p), and photos reuse a few canvas sizes: cache
    the small ones (large ones would hold too much memory)."""
    return _cached_silhouette(spec, p) if p <= 320 else _draw_silhouette(spec, p)


@lru_cache(maxsize=48)
def _cached_silhouette(spec: ProductSpec, p: int) -> _Silhouette:
    return _draw_silhouette(spec, p)


def _draw_silhouette(spec: ProductSpec, p: int) -> _Silhouette:
    lay = _Layers(2 * p)
    _draw_shape(spec, lay)
    body_im, cap_im = lay.body.reduce(2), lay.cap.reduce(2)
    boxes = [b for b in (body_im.getbbox(), cap_im.getbbox()) if b is not None]
    pad = 3
    box = (
        max(0, min(b[0] for b in boxes) - pad),
        max(0, min(b[1] for b in boxes) - pad),
        min(p, max(b[2] for b in boxes) + pad),
        min(p, max(b[3] for b in boxes) + pad),
    )
    body_im, cap_im = body_im.crop(box), cap_im.crop(box)
    body, cap = _arr(body_im), _arr(cap_im)
    alpha = np.maximum(body, cap)
    if spec.shape in _FLAT_SHAPES:  # a bevelled slab
        h = _arr(_blur(body_im, p * 0.035)) * np.float32(p * 0.06)
    else:  # a surface of revolution about the vertical axis: spheres, cones, cylinders
        half = alpha.sum(axis=1, keepdims=True) / 2
        xs = np.arange(box[0], box[2], dtype=np.float32)[None, :] - (p - 1) / 2
        h = np.sqrt(np.clip(half * half - xs * xs, 0, None))
        if spec.shape == "tube":
            h *= 0.45
    relief_im = lay.relief.reduce(2).crop(box)
    relief = None
    if relief_im.getbbox() is not None:
        relief = _arr(relief_im) * body
        h += relief * np.float32(p * 0.014 * (1 if spec.style == 2 else -1))  # raised or pressed in
    nx, ny, nz = _normals(h.astype(np.float32))
    return _Silhouette(
        box=box,
        alpha=_frozen(alpha),
        body=_frozen(body),
        cap=_frozen(cap),
        label=_frozen(_arr(lay.label.reduce(2).crop(box)) * body),
        ink=_frozen(_arr(lay.ink.reduce(2).crop(box)) * body),
        relief=None if relief is None else _frozen(relief),
        normals=(_frozen(nx), _frozen(ny), _frozen(nz)),
    )


def _product(spec: ProductSpec, rng: np.random.Generator, p: int, az: float, el: float) -> Image.Image:
    """The product lit from (az, el), cropped to its silhouette, as a premultiplied "RGBa" image."""
    sil = _silhouette(spec, p)
    x0, y0, x1, y1 = sil.box
    gx, gy = _grid(p)
    a = _albedo(spec, rng, p, gx[:, x0:x1], gy[y0:y1, :], sil.cap, sil.label, sil.ink)
    if sil.relief is not None:
        a *= 1 - 0.12 * sil.relief
    if spec.shape in _FLAT_SHAPES:
        ks, shin = 0.06, 4
    elif spec.shape in ("bath-bomb", "cone"):
        ks, shin = 0.0, 0
    else:
        ks, shin = 0.35, 5
    diffuse, highlight = _shade(sil.normals, az, el, float(rng.uniform(0.3, 0.45)), ks, shin)
    a *= diffuse
    if highlight is not None:
        a += highlight
    np.clip(a, 0, 255, out=a)
    a *= sil.alpha
    return _to_image(np.concatenate([a, sil.alpha[None] * 255]), "RGBa")


def _background(rng: np.random.Generator, s: int) -> F32:
    """A table top, planar (3, s, s)."""
    x, y = _grid(s)
    kind = int(rng.integers(6))
    c1 = _jitter(rng, _choice(rng, _TABLE), 14)
    if kind == 0:  # flat
        bg = _fill(c1, s, s)
    elif kind == 1:  # gradient
        ang = rng.uniform(0, 2 * np.pi)
        t = (x * np.float32(0.5 * math.cos(ang)) + np.float32(0.5)) + y * np.float32(0.5 * math.sin(ang))
        np.clip(t, 0, 1, out=t)
        bg = _lerp(_fill(c1, s, s), _jitter(rng, _choice(rng, _TABLE), 14), t)
    elif kind == 2:  # mottled stone / fabric
        t = _smooth(_lowfreq(rng, (s, s), int(rng.integers(4, 10))), -1, 1)
        bg = _fill(c1, s, s)
        bg *= 1 - np.float32(rng.uniform(0.1, 0.3)) * t
        bg += _noise(rng, s, int(rng.integers(3, 8)))
    elif kind == 3:  # wood planks: grain runs along the planks
        bg = _fill(_jitter(rng, _choice(rng, _WOOD), 12), s, s)
        ang = rng.uniform(0, np.pi)
        u = x * math.cos(ang) + y * math.sin(ang)
        k = rng.uniform(1.2, 2.5)
        pv = (x * np.float32(-math.sin(ang) * k) + np.float32(k)) + y * np.float32(math.cos(ang) * k)
        plank = np.floor(pv)
        tone = 1 + 0.12 * np.sin(plank * 12.9898 + rng.uniform(0, 6.3))  # each plank its own shade
        warp = 0.8 * np.sin(u * 3 + plank) + 1.5 * _lowfreq(rng, (s, s), 3)
        grain = np.sin((pv - plank) * rng.uniform(18, 30) + warp)
        seams = np.abs(pv - plank - 0.5) > 0.48
        bg *= tone * (1 - 0.1 * _smooth(grain, 0.3, 1.0)) - 0.3 * seams
    elif kind == 4:  # table edge against a wall
        edge = rng.uniform(-0.9, -0.35) + rng.uniform(-0.15, 0.15) * x
        wall = _clamp(np.asarray(_jitter(rng, _choice(rng, _TABLE), 14)) * 0.85)
        bg = _lerp(_fill(c1, s, s), wall, _smooth(edge - y, -0.006, 0.006))
        bg += (np.abs(y - edge - 0.012) < 0.012) * np.float32(35)
    else:  # tiles
        k = rng.uniform(2, 5)
        gx, gy = (x + 1) * k, (y + 1) * k
        grout = (np.abs(gx - np.floor(gx) - 0.5) > 0.47) | (np.abs(gy - np.floor(gy) - 0.5) > 0.47)
        bg = _fill(c1, s, s)
        bg *= 1 - np.float32(0.18) * grout
    return bg


def _region(
    dst_hw: tuple[int, ...], src_hw: tuple[int, ...], x0: int, y0: int
) -> tuple[slice, slice, slice, slice] | None:
    """Overlap of a source placed at (x0, y0) with the destination: (dst rows, dst cols, src rows, src cols)."""
    d_h, d_w = dst_hw[0], dst_hw[1]
    s_h, s_w = src_hw[0], src_hw[1]
    ax, ay = max(0, x0), max(0, y0)
    bx, by = min(d_w, x0 + s_w), min(d_h, y0 + s_h)
    if ax >= bx or ay >= by:
        return None
    return slice(ay, by), slice(ax, bx), slice(ay - y0, by - y0), slice(ax - x0, bx - x0)


def _occluder(rng: np.random.Generator, img: F32, center: tuple[float, float], az: float, el: float) -> None:
    """A fingertip or the edge of another object intruding into the frame."""
    s = img.shape[1]
    q = Image.new("L", (2 * s, 2 * s))  # drawn at 2x, reduced: antialiased edges for free
    d = ImageDraw.Draw(q)
    side = int(rng.integers(4))
    t = rng.uniform(0.15, 0.85) * s
    start = ((t, -0.1 * s), (s * 1.1, t), (t, s * 1.1), (-0.1 * s, t))[side]
    finger = rng.random() < 0.6
    nail: tuple[float, float, float] | None = None
    if finger:
        color = _jitter(rng, _choice(rng, _SKIN), 10)
        reach = rng.uniform(0.35, 0.7)
        tip = (start[0] + (center[0] - start[0]) * reach, start[1] + (center[1] - start[1]) * reach)
        r = rng.uniform(0.055, 0.085) * s
        d.line((start[0] * 2, start[1] * 2, tip[0] * 2, tip[1] * 2), fill=255, width=int(4 * r))
        d.ellipse((2 * (tip[0] - r), 2 * (tip[1] - r), 2 * (tip[0] + r), 2 * (tip[1] + r)), fill=255)
        back = math.atan2(start[1] - tip[1], start[0] - tip[0])
        nail = (tip[0] + math.cos(back) * r * 0.45, tip[1] + math.sin(back) * r * 0.45, r * 0.55)
    else:
        color = _jitter(rng, _choice(rng, _SCENTS)[1], 20)
        size = rng.uniform(0.25, 0.45) * s  # centred off-frame: only its edge comes in
        cx, cy = start
        sides = int(rng.choice([4, 40]))
        d.regular_polygon((2 * cx, 2 * cy, 2 * size), sides, rotation=rng.uniform(0, 180), fill=255)
    mask_im = q.reduce(2)
    mask = _arr(mask_im)
    soft = _arr(_blur(mask_im, s * 0.05))
    diffuse, hl = _shade(_normals(soft * np.float32(s * 0.12)), az, el, 0.4, 0.15 if finger else 0.05, 4)
    shadow = np.roll(soft, (int(s * 0.03), int(s * 0.03)), axis=(0, 1))
    img *= 1 - 0.4 * shadow * (1 - mask)
    rgb = _fill(color, s, s)
    rgb *= diffuse
    if nail is not None:
        nx, ny, nr = nail
        nm = Image.new("L", (s, s))
        ImageDraw.Draw(nm).ellipse((nx - nr, ny - nr, nx + nr, ny + nr), fill=255)
        rgb = _lerp(rgb, (250, 222, 212), _arr(_blur(nm, 1.0)) * 0.45)
    if hl is not None:
        rgb += hl
    img += (rgb - img) * mask


def _place(img: F32, layer: F32, x0: int, y0: int, *, alpha: F32 | None = None) -> None:
    """Darken ``img`` by ``layer`` (h, w) at (x0, y0), or composite premultiplied ``layer`` (3, h, w) with ``alpha``."""
    reg = _region(img.shape[1:], layer.shape[-2:], x0, y0)
    if reg is None:
        return
    dr, dc, sr, sc = reg
    if alpha is None:
        img[:, dr, dc] *= 1 - layer[sr, sc]
    else:
        img[:, dr, dc] *= 1 - alpha[sr, sc]
        img[:, dr, dc] += layer[:, sr, sc]


def render(spec: ProductSpec, index: int, *, size: int = 256, seed: int = 0) -> Image.Image:
    """Photo ``index`` of ``spec``: an RGB ``size`` x ``size`` image, deterministic in its arguments.

    Photos vary in background, light, shadow, rotation, scale, position, squash,
    blur, noise and softness; about one in ten is partly covered by a fingertip or
    another object.
    """
    _check_range("size", size, 16, 4096)
    s = size
    rng = _rng("photo", seed, _spec_key(spec), index)
    img = _background(rng, s)

    az = rng.uniform(0, 2 * np.pi)
    el = rng.uniform(0.6, 1.25)
    step = max(2, s // 32)  # canvas sizes come in steps so that silhouettes can be cached
    product = _product(spec, rng, max(16, step * round(s * rng.uniform(0.58, 0.88) / step)), az, el)

    # Pose: rotation (bottles mostly stand upright), perspective-ish squash and shear.
    upright = spec.shape in _CONTAINER_SHAPES or spec.shape == "cone"
    theta = rng.normal(0, 0.25) if upright and rng.random() < 0.75 else rng.uniform(-np.pi, np.pi)
    squash = rng.uniform(0.72, 1.0)
    shear = rng.uniform(-0.12, 0.12)
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    m = np.array([[cos_t, -sin_t], [sin_t, cos_t]]) @ np.array([[1, shear], [0, squash]])
    cw, ch = product.size
    corners = m @ np.array([[-cw, cw, cw, -cw], [-ch, -ch, ch, ch]]) / 2
    ow, oh = int(np.ptp(corners[0])) + 2, int(np.ptp(corners[1])) + 2
    inv = np.linalg.inv(m)
    # The inverse affine maps each output pixel to its input pixel, centre to centre.
    data = (
        inv[0, 0], inv[0, 1], cw / 2 - inv[0, 0] * ow / 2 - inv[0, 1] * oh / 2,
        inv[1, 0], inv[1, 1], ch / 2 - inv[1, 0] * ow / 2 - inv[1, 1] * oh / 2,
    )  # fmt: skip
    posed = product.transform((ow, oh), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR)
    layer = _from_image(posed)  # (4, oh, ow), premultiplied
    alpha = layer[3] / 255

    # Position, with the product occasionally running off the frame.
    spread = 0.2 if rng.random() < 0.9 else 0.32
    x0 = int(s * (0.5 + rng.uniform(-spread, spread)) - ow / 2)
    y0 = int(s * (0.5 + rng.uniform(-spread, spread)) - oh / 2)

    # A soft shadow cast away from the light plus a tighter one where it touches the table,
    # both from one blur at a quarter of the resolution.
    blur_r = max(1.0, s * 0.03)
    reach = s * 0.05 / math.tan(el)
    pad = int(3 * blur_r + reach) // 4 + 1
    small = Image.new("L", (ow // 4 + 2 * pad, oh // 4 + 2 * pad))
    small.paste(posed.getchannel("a").resize((ow // 4, oh // 4), Image.Resampling.BOX), (pad, pad))
    blurred = _arr(small.filter(ImageFilter.GaussianBlur(blur_r / 4)))
    shift = (round(-math.sin(az) * reach / 4), round(-math.cos(az) * reach / 4))
    shadow_small = np.roll(blurred, shift, axis=(0, 1)) * np.float32(rng.uniform(0.3, 0.5) * 255)
    shadow_small += blurred * np.float32(0.25 * 255)
    shadow_im = Image.fromarray(np.clip(shadow_small, 0, 255).astype(np.uint8))
    shadow = _arr(shadow_im.resize((4 * small.width, 4 * small.height), Image.Resampling.BILINEAR))
    _place(img, shadow, x0 - 4 * pad, y0 - 4 * pad)
    _place(img, layer[:3], x0, y0, alpha=alpha)

    if rng.random() < 0.1:
        _occluder(rng, img, (x0 + ow / 2, y0 + oh / 2), az, el)

    # Light across the scene: exposure, white balance, falloff, vignette.
    x, y = _grid(s)
    phi = rng.uniform(0, 2 * np.pi)
    grad, vig = rng.uniform(0, 0.3), rng.uniform(0, 0.25)
    exposure = 2 ** rng.normal(0, 0.15)
    light = (x * np.float32(grad * math.cos(phi) * exposure) + np.float32(exposure)) + y * np.float32(
        grad * math.sin(phi) * exposure
    )
    light -= _radius2(s) * np.float32(vig * exposure)
    img *= light
    wb = rng.uniform(-0.05, 0.05)
    for c, gain in enumerate((1 + wb, 1 + rng.uniform(-0.015, 0.015), 1 - wb)):
        img[c] *= np.float32(gain)
    if rng.random() < 0.35:  # out of focus or shaken
        img = _soften(img, rng.uniform(0.4, 1.0) * s / 256)
    img += _noise(rng, s, int(rng.integers(1, 7)))
    photo = _to_image(img)
    if rng.random() < 0.15:  # a cheap camera's JPEG: blocky, smeared colour
        buf = io.BytesIO()
        photo.save(buf, "JPEG", quality=int(rng.integers(25, 60)))
        photo = Image.open(buf)
        photo.load()
    return photo

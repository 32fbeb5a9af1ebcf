"""The catalogue: products with a stable identity derived from ``(seed, index, difficulty)``.

Also the seeded randomness, colour arithmetic and argument checks that rendering and
file writing share (underscore names: shared inside `edgeloop.synth` only).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TypeVar

import numpy as np
import numpy.typing as npt

Color = tuple[int, int, int]
_T = TypeVar("_T")

_SOLID_SHAPES = ("bar", "round-bar", "bath-bomb", "heart", "puck", "cone")
_CONTAINER_SHAPES = ("bottle", "jar", "tube")
#: Every product shape, solid ones first.
SHAPES: tuple[str, ...] = _SOLID_SHAPES + _CONTAINER_SHAPES
_FLAT_SHAPES = frozenset({"bar", "round-bar", "heart", "puck"})
_SHAPE_WEIGHTS = (2.0, 1.0, 2.0, 1.0, 1.0, 1.0, 1.5, 1.0, 1.0)

# The product kind is the noun in the folder name: "<scent>-<kind>".
_KINDS: Mapping[str, tuple[str, ...]] = {
    "bar": ("soap-bar",),
    "round-bar": ("round-soap", "facial-soap"),
    "bath-bomb": ("bath-bomb",),
    "heart": ("heart-soap", "bath-heart"),
    "puck": ("shampoo-bar", "conditioner-bar", "massage-bar"),
    "cone": ("bubble-cone", "bath-melt"),
    "bottle": ("shampoo", "shower-gel", "body-lotion", "bath-oil"),
    "jar": ("body-butter", "face-mask", "sugar-scrub"),
    "tube": ("hand-cream", "foot-cream", "face-wash"),
}
_ASPECT: Mapping[str, tuple[float, float]] = {
    "bar": (1.45, 1.9),
    "round-bar": (1.0, 1.35),
    "bath-bomb": (1.0, 1.08),
    "heart": (1.0, 1.12),
    "puck": (1.0, 1.0),
    "cone": (0.55, 0.75),
    "bottle": (0.34, 0.46),
    "jar": (1.1, 1.5),
    "tube": (0.3, 0.4),
}
_SOLID_TEXTURES = ("plain", "speckle", "swirl", "layers", "marble", "glitter", "flecks", "two-tone")
_LABEL_TEXTURES = ("plain-label", "band-label", "striped-label", "dotted-label", "no-label")
_BOMB_TEXTURES = ("speckle", "speckle", "glitter", "two-tone", "flecks", "swirl", "plain")

# Each scent has a natural colour so that names read plausibly ("lavender" is purple).
_SCENTS: tuple[tuple[str, Color], ...] = (
    ("lavender", (150, 120, 190)),
    ("rose", (225, 130, 150)),
    ("mint", (140, 210, 170)),
    ("lemon", (240, 225, 100)),
    ("lime", (160, 205, 80)),
    ("orange", (240, 150, 50)),
    ("grapefruit", (240, 120, 100)),
    ("coconut", (245, 240, 230)),
    ("vanilla", (240, 225, 190)),
    ("honey", (220, 160, 60)),
    ("oat", (210, 190, 150)),
    ("almond", (230, 205, 170)),
    ("cocoa", (120, 80, 55)),
    ("coffee", (90, 60, 40)),
    ("charcoal", (45, 45, 48)),
    ("seaweed", (60, 110, 80)),
    ("jasmine", (245, 245, 215)),
    ("cedar", (160, 100, 70)),
    ("sandalwood", (195, 150, 110)),
    ("eucalyptus", (110, 170, 160)),
    ("tea-tree", (150, 180, 120)),
    ("cherry", (190, 30, 60)),
    ("berry", (130, 40, 110)),
    ("mango", (250, 180, 60)),
    ("peach", (250, 190, 160)),
    ("fig", (120, 70, 100)),
    ("apple", (170, 210, 90)),
    ("aloe", (120, 190, 110)),
    ("cucumber", (180, 220, 170)),
    ("ginger", (210, 150, 80)),
    ("cinnamon", (170, 90, 50)),
    ("patchouli", (110, 80, 60)),
    ("violet", (120, 80, 170)),
    ("lily", (250, 240, 245)),
    ("sage", (150, 170, 130)),
    ("rosemary", (100, 140, 110)),
    ("pine", (40, 100, 60)),
    ("amber", (210, 130, 40)),
    ("plum", (110, 40, 80)),
    ("blueberry", (70, 80, 160)),
    ("ocean", (50, 120, 190)),
    ("sky", (130, 180, 230)),
    ("bubblegum", (245, 150, 200)),
    ("watermelon", (240, 90, 100)),
    ("lagoon", (60, 190, 190)),
)
_CAP_COLORS: tuple[Color, ...] = (
    (25, 25, 28),
    (240, 240, 236),
    (190, 190, 196),
    (205, 170, 70),
    (150, 105, 65),
    (60, 60, 66),
)
_LABEL_COLORS: tuple[Color, ...] = (
    (242, 240, 232),
    (235, 225, 200),
    (190, 160, 120),
    (30, 30, 32),
    (200, 200, 205),
)

# How often a new product is a near-copy of an earlier one, per unit of difficulty.
_VARIANT_RATE = 0.5


@dataclass(frozen=True)
class ProductSpec:
    """The stable identity of one product, derived from ``(seed, index, difficulty)``.

    ``accent`` colours caps, lids and texture marks; ``label`` is the label colour of
    containers and the secondary texture colour of solid products. ``style`` picks a
    sub-shape (cap type, corner radius, ...). ``variant_of`` names the earlier product
    this one was derived from (same shape, close colour), if any.
    """

    name: str
    index: int
    kind: str
    shape: str
    scent: str
    color: Color
    accent: Color
    label: Color
    texture: str
    text: str
    aspect: float
    style: int
    variant_of: str | None = None


def _rng(*parts: object) -> np.random.Generator:
    """A generator seeded by a stable hash of ``parts`` (never Python's salted ``hash``)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=16).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest, "little")))


def _substream(rng: np.random.Generator) -> np.random.Generator:
    """An independent generator seeded from ``rng``, which advances by exactly one draw."""
    return np.random.Generator(np.random.PCG64(int(rng.integers(2**63))))


def _choice(rng: np.random.Generator, items: Sequence[_T], weights: Sequence[float] | None = None) -> _T:
    if weights is None:
        return items[int(rng.integers(len(items)))]
    w = np.asarray(weights, dtype=np.float64)
    return items[int(rng.choice(len(items), p=w / w.sum()))]


def _dist(a: Color, b: Color) -> float:
    """Rough perceptual distance (weighted RGB), ~0..255."""
    dr, dg, db = a[0] - b[0], a[1] - b[1], a[2] - b[2]
    return math.sqrt((2 * dr * dr + 4 * dg * dg + 3 * db * db) / 9)


def _clamp(c: Sequence[float] | npt.NDArray[np.floating]) -> Color:
    return (int(min(255, max(0, round(c[0])))), int(min(255, max(0, round(c[1])))), int(min(255, max(0, round(c[2])))))


def _jitter(rng: np.random.Generator, c: Color, amount: float) -> Color:
    d = rng.uniform(-amount, amount, 3)
    return _clamp((c[0] + d[0], c[1] + d[1], c[2] + d[2]))


def _luma(c: Color) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _text_for(scent: str) -> str:
    """The word embossed or printed on the product: the scent, shortened if long."""
    word = scent.split("-")[0].upper()
    return word if len(word) <= 8 else word[:5]


def _name_and_scent(
    rng: np.random.Generator, color: Color, kind: str, made: Sequence[ProductSpec], avoid: str | None
) -> tuple[str, str]:
    """Pick the free scent whose colour is nearest, preferring scents not used yet."""
    used = {p.name for p in made}
    used_scents = {p.scent for p in made}
    best: tuple[float, str] | None = None
    for scent, ref in _SCENTS:
        if f"{scent}-{kind}" in used or scent == avoid:
            continue
        score = _dist(color, ref) + (35.0 if scent in used_scents else 0.0)
        score += float(rng.uniform(0, 12))
        if best is None or score < best[0]:
            best = (score, scent)
    if best is None:  # every scent already names this kind: number it
        scent = _SCENTS[int(rng.integers(len(_SCENTS)))][0]
        return f"{scent}-{kind}-{len(made)}", scent
    return f"{best[1]}-{kind}", best[1]


def _accent_for(rng: np.random.Generator, shape: str, color: Color) -> Color:
    if shape in _CONTAINER_SHAPES and rng.random() < 0.8:
        options = [c for c in _CAP_COLORS if _dist(c, color) > 45] or list(_CAP_COLORS)
        return _jitter(rng, _choice(rng, options), 6)
    options = [ref for _, ref in _SCENTS if 80 < _dist(ref, color) < 230]
    options += [(245, 245, 240), (40, 35, 35), (212, 175, 55)]
    return _jitter(rng, _choice(rng, options), 10)


def _label_for(rng: np.random.Generator, shape: str, color: Color, accent: Color) -> Color:
    if shape in _CONTAINER_SHAPES:
        options = [c for c in _LABEL_COLORS if _dist(c, color) > 60] or [(242, 240, 232), (30, 30, 32)]
        return _jitter(rng, _choice(rng, options), 5)
    options = [ref for _, ref in _SCENTS if _dist(ref, color) > 70 and _dist(ref, accent) > 50]
    return _jitter(rng, _choice(rng, options or [(245, 245, 240)]), 10)


def _texture_for(rng: np.random.Generator, shape: str) -> str:
    if shape in _CONTAINER_SHAPES:
        return _choice(rng, _LABEL_TEXTURES)
    if shape == "bath-bomb":
        return _choice(rng, _BOMB_TEXTURES)
    return _choice(rng, _SOLID_TEXTURES)


def _new_product(seed: int, index: int, difficulty: float, made: Sequence[ProductSpec]) -> ProductSpec:
    rng = _rng("product", seed, index, round(difficulty * 1000))
    if made and rng.random() < _VARIANT_RATE * difficulty:
        return _variant(rng, index, difficulty, made)
    shape = _choice(rng, SHAPES, _SHAPE_WEIGHTS)
    kind = _choice(rng, _KINDS[shape])
    # Best of many candidate colours: the one furthest from every earlier product, products
    # of another shape counting as a little further (the shape tells those apart too).
    candidates = [_jitter(rng, _choice(rng, _SCENTS)[1], 30) for _ in range(32)]
    color = candidates[0]
    if made:
        diff = np.asarray(candidates, dtype=np.float64)[:, None, :] - [p.color for p in made]
        dist = np.sqrt((diff**2 @ [2.0, 4.0, 3.0]) / 9) * [1.0 if p.shape == shape else 1.3 for p in made]
        color = candidates[int(np.argmax(dist.min(axis=1)))]
    name, scent = _name_and_scent(rng, color, kind, made, None)
    accent = _accent_for(rng, shape, color)
    lo, hi = _ASPECT[shape]
    text = "" if shape in ("bath-bomb", "cone") else _text_for(scent)
    return ProductSpec(
        name=name,
        index=index,
        kind=kind,
        shape=shape,
        scent=scent,
        color=color,
        accent=accent,
        label=_label_for(rng, shape, color, accent),
        texture=_texture_for(rng, shape),
        text=text,
        aspect=round(float(rng.uniform(lo, hi)), 3),
        style=int(rng.integers(3)),
    )


def _variant(rng: np.random.Generator, index: int, difficulty: float, made: Sequence[ProductSpec]) -> ProductSpec:
    """A near-copy of an earlier product: same shape, a colour ``~lerp(90, 22, difficulty)`` away."""
    parent = made[int(rng.integers(len(made)))]
    target = 90.0 - 68.0 * difficulty
    siblings = [p.color for p in made if p.shape == parent.shape]
    base = np.asarray(parent.color, dtype=np.float64)
    # Try a few directions, mostly changes of hue/saturation (orthogonal to grey, which
    # lighting cannot fake); keep the first that is ``target`` away from every product of
    # this shape, so that variants of one parent never coincide.
    best: tuple[float, Color] = (-1.0, parent.color)
    for _ in range(12):
        direction = rng.normal(size=3)
        direction -= direction.mean() * 0.7
        direction /= float(np.linalg.norm(direction)) + 1e-9
        color = parent.color
        for step in range(1, 12):  # grow until the clamped colour is far enough
            color = _clamp(base + direction * target * step / 4)
            if _dist(color, parent.color) >= target:
                break
        nearest = min(_dist(color, c) for c in siblings)
        if nearest > best[0]:
            best = (nearest, color)
        if nearest >= target * 0.9:
            break
    color = best[1]
    name, scent = _name_and_scent(rng, color, parent.kind, made, parent.scent)
    texture = parent.texture
    if rng.random() < (1.0 - difficulty) * 0.8:
        texture = _texture_for(rng, parent.shape)
    accent = parent.accent
    if rng.random() < (1.0 - difficulty) * 0.6:
        accent = _accent_for(rng, parent.shape, color)
    text = "" if parent.shape in ("bath-bomb", "cone") else _text_for(scent)
    return ProductSpec(
        name=name,
        index=index,
        kind=parent.kind,
        shape=parent.shape,
        scent=scent,
        color=color,
        accent=accent,
        label=parent.label,
        texture=texture,
        text=text,
        aspect=parent.aspect,
        style=parent.style,
        variant_of=parent.name,
    )


def _iter_catalogue(seed: int, difficulty: float) -> Iterator[ProductSpec]:
    made: list[ProductSpec] = []
    while True:
        spec = _new_product(seed, len(made), difficulty, made)
        made.append(spec)
        yield spec


def catalogue(n_products: int, *, seed: int = 0, difficulty: float = 0.3) -> list[ProductSpec]:
    """The first ``n_products`` products; product ``i`` never depends on ``n_products``.

    ``difficulty`` in [0, 1] sets how many products are near-copies of earlier ones
    and how close their colours are.
    """
    _check_range("n_products", n_products, 0, 10_000)
    _check_difficulty(difficulty)
    return list(islice(_iter_catalogue(seed, difficulty), n_products))


def _check_range(name: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise ValueError(f"{name}={value!r} is out of range; use a value in [{lo}, {hi}]")


def _check_difficulty(difficulty: float) -> None:
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(f"difficulty={difficulty!r} is out of range; use a value in [0, 1]")

"""Deterministic synthetic product photos: the catalogue that tests and the demo train on.

Nothing in the build may download data, so this package invents a shop: soap bars,
bath bombs, shampoo pucks, bottles, jars and tubes, each a product with a stable
identity (`ProductSpec`) derived from ``(seed, index, difficulty)`` (`products`),
photographed on varied tables under varied light (`render`, in `rendering`), and
written class-per-folder as JPEGs (`generate`, in `files`). Growing the catalogue
appends products, which is how the "new products arrive" story is rehearsed.
``plant_bad=True`` adds the broken and awkward files that ingest must survive
(`PLANTED_KINDS`).

Only numpy and Pillow are used; the font is Pillow's built-in one.
"""

from __future__ import annotations

from edgeloop.synth.files import PLANTED_KINDS, PLANTED_USABLE, SynthReport, generate
from edgeloop.synth.products import SHAPES, ProductSpec, catalogue
from edgeloop.synth.rendering import render

__all__ = [
    "PLANTED_KINDS",
    "PLANTED_USABLE",
    "SHAPES",
    "ProductSpec",
    "SynthReport",
    "catalogue",
    "generate",
    "render",
]

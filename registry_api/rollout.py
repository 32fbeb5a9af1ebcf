"""Pure decisions behind a poll: rollout buckets, targeting, and which variant a device gets."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping, Sequence

from registry_api.models import Targeting

BUCKETS = 100


@dataclasses.dataclass(frozen=True)
class Device:
    """What a poll tells us about the device (all optional)."""

    device_id: str | None = None
    platform: str | None = None
    runtime: str | None = None
    app_version: str | None = None
    device_class: str | None = None


@dataclasses.dataclass(frozen=True)
class VariantInfo:
    variant: str
    sha256: str
    size: int
    runtime: str
    quantization: str


def bucket(device_id: str, alias: str, version: int) -> int:
    """A stable bucket in [0, 100) for (device, alias, target version).

    Keyed by the target version so each new rollout samples devices afresh, yet for one
    target a device keeps its bucket: raising the percentage only ever adds devices.
    """
    digest = hashlib.sha256(f"{device_id}\x00{alias}\x00{version}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_rollout(device_id: str | None, alias: str, version: int, percent: int) -> bool:
    if percent >= BUCKETS:
        return True
    if percent <= 0 or not device_id:
        return False  # without an id we cannot keep a device's answer stable, so it waits for 100 %
    return bucket(device_id, alias, version) < percent


_NUM = re.compile(r"\d+")


def parse_version(text: str) -> tuple[int, ...] | None:
    """`2.4.1-beta` → (2, 4, 1); None when a part has no leading number."""
    parts = []
    for piece in text.strip().split("."):
        match = _NUM.match(piece)
        if match is None:
            return None
        parts.append(int(match.group()))
    return tuple(parts)


def targeting_matches(targeting: Targeting, device: Device) -> bool:
    """Every non-empty criterion must hold; a device that does not say is not matched by it."""
    if targeting.platforms and device.platform not in targeting.platforms:
        return False
    if targeting.runtimes and device.runtime not in targeting.runtimes:
        return False
    if targeting.device_classes and device.device_class not in targeting.device_classes:
        return False
    if targeting.min_app_version:
        want = parse_version(targeting.min_app_version)
        have = parse_version(device.app_version) if device.app_version else None
        if want is None or have is None or _padded(have, want) < _padded(want, have):
            return False
    return True


def _padded(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return a + (0,) * max(0, len(b) - len(a))


def choose_variant(
    variants: Sequence[VariantInfo],
    *,
    runtime: str | None,
    latencies: Mapping[str, float],
    budget_ms: float | None,
    defaults: Mapping[str, str],
) -> VariantInfo | None:
    """The fastest variant (for `runtime`) measured within budget, else the runtime's default.

    `variants` are publishable ones only; `latencies` are measured on the device's class.
    Without a default on offer, the smallest file wins (least to download).
    """
    candidates = [v for v in variants if runtime is None or v.runtime == runtime]
    if not candidates:
        return None
    measured = [
        (latencies[v.variant], v)
        for v in candidates
        if v.variant in latencies and (budget_ms is None or latencies[v.variant] <= budget_ms)
    ]
    if measured:
        return min(measured, key=lambda item: (item[0], item[1].size))[1]
    runtimes = [runtime] if runtime else list(defaults)
    by_name = {v.variant: v for v in candidates}
    for rt in runtimes:
        name = defaults.get(rt) if rt else None
        if name in by_name:
            return by_name[name]
    return min(candidates, key=lambda v: (v.size, v.variant))

"""Pure logic: rollout buckets, targeting, variant choice, ranges, keys, token buckets, digests."""

from __future__ import annotations

import pytest

from registry_api.core.ratelimit import RateLimiter
from registry_api.core.security import hash_token, new_key, parse_token, token_matches
from registry_api.errors import RangeNotSatisfiable
from registry_api.models import Targeting
from registry_api.publish import card_digest
from registry_api.ranges import parse_range
from registry_api.rollout import (
    Device,
    VariantInfo,
    bucket,
    choose_variant,
    in_rollout,
    parse_version,
    targeting_matches,
)


def test_bucket_is_stable_uniform_and_keyed_by_target() -> None:
    assert bucket("dev-1", "production", 7) == bucket("dev-1", "production", 7)
    counts = [0] * 100
    for i in range(20_000):
        counts[bucket(f"dev-{i}", "production", 7)] += 1
    assert min(counts) > 140 and max(counts) < 270  # ~200 each
    moved = sum(bucket(f"dev-{i}", "production", 7) != bucket(f"dev-{i}", "production", 8) for i in range(1000))
    assert moved > 900  # a new target samples afresh


def test_rollout_only_grows_with_the_percentage() -> None:
    devices = [f"d{i}" for i in range(2000)]
    previous: set[str] = set()
    for percent in (0, 1, 5, 25, 50, 99, 100):
        now = {d for d in devices if in_rollout(d, "canary", 3, percent)}
        assert previous <= now
        assert abs(len(now) - 20 * percent) <= max(40, 2 * percent)
        previous = now
    assert not in_rollout(None, "canary", 3, 50)
    assert in_rollout(None, "canary", 3, 100)


def test_targeting() -> None:
    device = Device("d", "android", "litert", "2.10.1", "pixel-6a")
    assert targeting_matches(Targeting(), device)
    assert targeting_matches(Targeting(platforms=["android"], runtimes=["litert"], min_app_version="2.9"), device)
    assert not targeting_matches(Targeting(min_app_version="2.10.2"), device)
    assert targeting_matches(Targeting(min_app_version="2.10"), device)
    assert not targeting_matches(Targeting(device_classes=["x"]), device)
    assert not targeting_matches(Targeting(min_app_version="1.0"), Device("d"))
    assert parse_version("2.4.1-beta") == (2, 4, 1)
    assert parse_version("banana") is None


V = [
    VariantInfo("tflite_int8", "a" * 64, 100, "litert", "int8"),
    VariantInfo("tflite_fp32", "b" * 64, 400, "litert", "fp32"),
    VariantInfo("onnx_fp32", "c" * 64, 400, "onnxruntime", "fp32"),
]
DEFAULTS = {"litert": "tflite_int8", "onnxruntime": "onnx_int8"}


@pytest.mark.parametrize(
    ("runtime", "latencies", "budget", "expected"),
    [
        ("litert", {}, 10.0, "tflite_int8"),  # nothing measured: default
        ("litert", {"tflite_int8": 9.0, "tflite_fp32": 5.0}, 10.0, "tflite_fp32"),  # fastest within budget
        ("litert", {"tflite_int8": 19.0, "tflite_fp32": 15.0}, 10.0, "tflite_int8"),  # none within: default
        ("litert", {"tflite_fp32": 15.0}, None, "tflite_fp32"),  # no budget: fastest measured
        ("onnxruntime", {}, None, "onnx_fp32"),  # default not on offer: smallest
        ("litert", {"onnx_fp32": 1.0}, None, "tflite_int8"),  # other runtime's numbers ignored
        (None, {}, None, "tflite_int8"),  # runtime unknown: first default on offer
    ],
)
def test_choose_variant(runtime: str | None, latencies: dict[str, float], budget: float | None, expected: str) -> None:
    chosen = choose_variant(V, runtime=runtime, latencies=latencies, budget_ms=budget, defaults=DEFAULTS)
    assert chosen is not None and chosen.variant == expected


def test_choose_variant_none_for_missing_runtime() -> None:
    assert choose_variant(V[:2], runtime="onnxruntime", latencies={}, budget_ms=None, defaults=DEFAULTS) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-5000", (990, 999)),
        ("bytes=0-9,10-19", (0, 19)),  # adjacent: coalesced
        ("bytes=0-9, 5-30", (0, 30)),
        ("bytes=0-9,50-59", None),  # disjoint: whole object
        ("bytes=0-9,2000-", (0, 9)),  # the unsatisfiable part is dropped
        ("items=0-9", None),  # other unit: ignored
        ("bytes=9-0", None),  # invalid: ignored
        ("bytes=a-b", None),
        ("bytes=", None),
        ("bytes=5", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0", "bytes=1000-1000,2000-"])
def test_unsatisfiable_range(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as info:
        parse_range(header, 1000)
    assert info.value.size == 1000


def test_api_keys_are_hashed_and_parsed() -> None:
    key = new_key()
    assert parse_token(key.token) == key.key_id
    assert key.hash == hash_token(key.token) and key.token not in key.hash
    assert token_matches(key.token, key.hash)
    assert not token_matches(key.token + "x", key.hash)
    assert parse_token("elk_short_x") is None
    assert parse_token("nope") is None
    assert new_key().token != key.token


def test_token_bucket_refills_and_reports_wait() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert all(limiter.take("k", rate=2, burst_s=2) == 0 for _ in range(4))  # burst of 4
    wait = limiter.take("k", rate=2, burst_s=2)
    assert wait == pytest.approx(0.5)
    now[0] += 0.5
    assert limiter.take("k", rate=2, burst_s=2) == 0
    assert limiter.take("other", rate=2, burst_s=2) == 0  # buckets are per key


def test_card_digest_ignores_key_order() -> None:
    assert card_digest({"a": 1, "b": [1, 2]}) == card_digest({"b": [1, 2], "a": 1})
    assert card_digest({"a": 1}) != card_digest({"a": 2})

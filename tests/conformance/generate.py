"""Write `vectors.json`: the conformance cases every edgeloop device SDK must pass (see README.md here).

Valid manifests come from the registry's own code (`ManifestService.signed` with a fixed key
and clock); tampered ones are derived from those bytes, and schema-level attacks are signed
with the same key ring so only the rule under test can refuse them. Deterministic: run it
again and the file is the same byte for byte (`test_vectors_are_current` checks that).

    python tests/conformance/generate.py          # rewrite vectors.json
    python tests/conformance/generate.py --check  # exit 1 if vectors.json is out of date
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.manifest import InputSpec, canonical_bytes
from registry_api.core.config import RegistrySettings
from registry_api.core.security import KeyRing
from registry_api.manifests import AliasInfo, ManifestService, ModelSnapshot, Resolution, VersionInfo
from registry_api.models import Targeting
from registry_api.rollout import VariantInfo

OUT = Path(__file__).with_name("vectors.json")
MODEL = "shelf-products"
KEY_ID = "conformance-1"
LABELS = ["lavender-soap", "rose-bath-bomb", "citrus-shampoo", "cedar-deodorant"]
ISSUED = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)
TTL_S = 7 * 24 * 3600
NOW = ISSUED + dt.timedelta(hours=1)
SKEW_S = 300.0
# Ed25519's group order: a signature whose S has L added still verifies under lax (malleable) checks.
ED25519_L = 2**252 + 27742317777372353535851937790883648493


def seeded_key(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"edgeloop conformance {label}".encode()).digest())


KEYRING = KeyRing(seeded_key("registry"), KEY_ID)
OTHER = seeded_key("attacker")


def artifact(name: str, n: int = 96) -> bytes:
    """Deterministic bytes standing in for a model file."""
    out = b""
    while len(out) < n:
        out += hashlib.sha256(f"{name}:{len(out)}".encode()).digest()
    return out[:n]


ART = artifact("model-v2")
ART_V1 = artifact("model-v1")


def registry_manifest(
    *,
    version: int = 2,
    alias: str = "production",
    labels: list[str] | None = None,
    sequence: int = 5,
    rollback: bool = False,
    scale: float | None = None,
    issued: dt.datetime = ISSUED,
    data: bytes = ART,
) -> bytes:
    """A manifest exactly as `edgeloop serve` sends it, from the registry's signing code."""
    settings = RegistrySettings(public_url="", manifest_ttl_s=TTL_S, manifest_issue_interval_s=3600)
    service = ManifestService(settings, None, KEYRING, clock=issued.timestamp)  # type: ignore[arg-type]
    dtype = "uint8" if scale is not None else "float32"
    spec = InputSpec(height=96, width=96, dtype=dtype, scale=scale, zero_point=0 if scale is not None else None)
    variant = VariantInfo("onnx_fp32", hashlib.sha256(data).hexdigest(), len(data), "onnxruntime", "fp32")
    snap = ModelSnapshot(
        versions={version: VersionInfo(version, tuple(labels or LABELS), spec, (variant,))},
        aliases={alias: AliasInfo(alias, version, None, 100, Targeting(), None, rollback, sequence)},
        latencies={},
        loaded_at=0.0,
    )
    res = Resolution(version, variant, "target", rollback, 100, sequence)
    return service.signed(MODEL, alias, res, snap).body


def resign(obj: dict[str, Any], key: Ed25519PrivateKey | None = None) -> dict[str, Any]:
    """`obj` with a fresh signature over its canonical JSON (the registry's rule, any content)."""
    body = {k: v for k, v in obj.items() if k != "signature"}
    sig = (key or KEYRING.private_key).sign(canonical_bytes(body))
    return {**body, "signature": base64.b64encode(sig).decode("ascii")}


def dumps(obj: Any, **kw: Any) -> bytes:
    """The registry's wire form (sorted, compact, ASCII escapes) unless told otherwise."""
    kw.setdefault("sort_keys", True)
    kw.setdefault("separators", (",", ":"))
    return json.dumps(obj, **kw).encode("utf-8")


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def build() -> dict[str, Any]:
    base = registry_manifest()
    obj = json.loads(base)
    first = {"model": MODEL, "alias": "production"}
    installed_v1 = {**first, "installed_version": 1, "installed_sequence": 3, "installed_labels": LABELS[:3]}
    installed_v3 = {**first, "installed_version": 3, "installed_sequence": 4, "installed_labels": LABELS}
    expires = ISSUED + dt.timedelta(seconds=TTL_S)
    cases: list[dict[str, Any]] = []

    def case(name: str, why: str, wire: bytes, verdict: str, expect: dict[str, Any] | None = None, **kw: Any) -> None:
        entry: dict[str, Any] = {"name": name, "description": why}
        try:
            entry["manifest"] = wire.decode("utf-8")
        except UnicodeDecodeError:
            entry["manifest_b64"] = base64.b64encode(wire).decode("ascii")
        entry["expect"] = expect or first
        entry["now"] = iso(kw.pop("now", NOW))
        entry["verdict"] = verdict
        entry.update(kw)
        cases.append(entry)

    # --- valid answers
    case("valid-first-install", "the registry's answer to a device with nothing installed", base, "accept")
    case("valid-update", "v2 over v1: labels extend, sequence grows", base, "accept", installed_v1)
    case("valid-same-version", "the installed version again", base, "accept", {**installed_v1, "installed_version": 2})
    case(
        "valid-seen-sequence-equal",
        "a sequence equal to the highest seen",
        base,
        "accept",
        {**first, "seen_sequence": 5},
    )
    case(
        "valid-key-order",
        "keys in another order: the canonical form sorts them",
        dumps(dict(reversed(list(obj.items()))), sort_keys=False),
        "accept",
    )
    case("valid-whitespace", "pretty-printed wire text", dumps(obj, indent=2), "accept")
    case(
        "valid-raw-utf8",
        "the same manifest with every non-ASCII character raw",
        dumps(obj, ensure_ascii=False),
        "accept",
    )
    case(
        "valid-escaped-slash", "JSON may escape '/'", base.replace(b"/v1/artifacts/", b"\\/v1\\/artifacts\\/"), "accept"
    )

    # --- signature and keys
    case("wrong-key-id", "key_id names no pinned key", dumps(resign({**obj, "key_id": "rogue"})), "ManifestError")
    case("unknown-key", "right key_id, signed by another key", dumps(resign(obj, OTHER)), "ManifestError")
    case("unsigned", "empty signature", dumps({**obj, "signature": ""}), "ManifestError")
    case(
        "no-signature",
        "signature field missing",
        dumps({k: v for k, v in obj.items() if k != "signature"}),
        "ManifestError",
    )
    case("signature-not-string", "signature is a number", dumps({**obj, "signature": 12345678}), "ManifestError")
    sig = base64.b64decode(obj["signature"])
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(obj["signature"][-3])
    loose = obj["signature"][:-3] + alphabet[last ^ 1] + "=="  # only one of the 4 unused trailing bits changes
    case(
        "signature-noncanonical-base64",
        "the same 64 bytes in base64 with non-zero padding bits",
        dumps({**obj, "signature": loose}),
        "ManifestError",
    )
    case(
        "signature-unpadded",
        "base64 without its '==' padding",
        dumps({**obj, "signature": obj["signature"].rstrip("=")}),
        "ManifestError",
    )
    s = int.from_bytes(sig[32:], "little") + ED25519_L
    malleated = base64.b64encode(sig[:32] + s.to_bytes(32, "little")).decode()
    case(
        "signature-malleated-s",
        "S + L: a second encoding of the same signature (strict RFC 8032 refuses S >= L)",
        dumps({**obj, "signature": malleated}),
        "ManifestError",
    )
    case(
        "signature-truncated",
        "63 bytes of signature",
        dumps({**obj, "signature": base64.b64encode(sig[:63]).decode()}),
        "ManifestError",
    )
    case(
        "tamper-every-byte",
        "flip bit 0x01 and then 0x20 of each byte in turn: every result is refused",
        base,
        "ManifestError",
        mode="tamper_every_byte",
        flips=[1, 32],
    )
    changed = dict(obj, version=3)
    case("field-changed", "version raised after signing", dumps(changed), "ManifestError")
    case("field-added-after-signing", "a field added after signing", dumps({**obj, "rollback": True}), "ManifestError")

    # --- time
    case(
        "expired",
        "past expires_at by more than the skew",
        base,
        "ManifestExpired",
        now=expires + dt.timedelta(seconds=SKEW_S + 1),
    )
    case(
        "expired-within-skew",
        "past expires_at, inside max_clock_skew_s",
        base,
        "accept",
        now=expires + dt.timedelta(seconds=SKEW_S - 1),
    )
    case(
        "issued-in-future",
        "issued_at ahead of now by more than the skew",
        base,
        "ManifestExpired",
        now=ISSUED - dt.timedelta(seconds=SKEW_S + 1),
    )
    case(
        "issued-in-future-within-skew",
        "issued_at ahead of now, inside the skew",
        base,
        "accept",
        now=ISSUED - dt.timedelta(seconds=SKEW_S - 1),
    )
    case(
        "expired-zero-skew",
        "one second past expires_at with max_clock_skew_s 0",
        base,
        "ManifestExpired",
        {**first, "max_clock_skew_s": 0},
        now=expires + dt.timedelta(seconds=1),
    )
    offset = resign({**obj, "issued_at": "2026-11-23T08:00:00+01:00", "expires_at": "2026-11-30T08:00:00.500+01:00"})
    case(
        "timestamps-with-offset", "RFC 3339 offsets and fractions are instants like any other", dumps(offset), "accept"
    )
    naive = resign({**obj, "issued_at": "2026-11-23T07:00:00", "expires_at": "2026-11-30T07:00:00"})
    case("timestamps-without-zone", "a signed time without a zone means nothing", dumps(naive), "ManifestError")
    epoch = resign({**obj, "expires_at": int(expires.timestamp())})
    case("timestamp-as-number", "a time must be an RFC 3339 string", dumps(epoch), "ManifestError")

    # --- identity
    case("wrong-model", "a signed answer for another model", base, "WrongModel", {**first, "model": "other-model"})
    canary = registry_manifest(alias="canary")
    case("wrong-alias", "canary's manifest sent to a production device", canary, "WrongModel")
    case(
        "runtime-not-installed",
        "onnxruntime variant, device has only litert",
        base,
        "WrongModel",
        {**first, "runtimes": ["litert"]},
    )

    # --- versions, rollback, sequence
    case("older-without-rollback", "v2 offered over v3, not a rollback", base, "RollbackRefused", installed_v3)
    rb = registry_manifest(rollback=True, sequence=6)
    case("signed-rollback", "v2 over v3 with rollback and a sequence above the install's", rb, "accept", installed_v3)
    rb_old = registry_manifest(rollback=True, sequence=4)
    case(
        "replayed-rollback",
        "a rollback not newer than the manifest that installed v3",
        rb_old,
        "RollbackRefused",
        installed_v3,
    )
    case(
        "stale-sequence",
        "sequence 5 after 7 was seen: a replayed answer",
        base,
        "StaleManifest",
        {**first, "seen_sequence": 7},
    )
    case(
        "stale-rollback",
        "a replayed rollback also below the seen sequence",
        rb,
        "StaleManifest",
        {**installed_v3, "seen_sequence": 9},
    )

    # --- labels
    renamed = registry_manifest(labels=[LABELS[0], "rose-soap", *LABELS[2:]])
    case("labels-renamed", "index 1 changes meaning", renamed, "WrongModel", installed_v1)
    short = registry_manifest(labels=LABELS[:2])
    case("labels-shorter", "a label dropped", short, "WrongModel", installed_v1)
    case(
        "labels-renamed-allowed",
        "the app accepts label changes",
        renamed,
        "accept",
        {**installed_v1, "allow_label_changes": True},
    )
    nfd = registry_manifest(labels=["cre\u0300me-brule\u0301e", "\U0001f9fc-soap", "\u00e9t\u00e9"])
    case("labels-unicode", "combining marks, astral characters, accents (wire: \\u escapes)", nfd, "accept")
    nfc = json.loads(nfd)
    nfc["labels"][0] = "cr\u00e8me-brul\u00e9e"
    case(
        "labels-unicode-normalised",
        "NFC where NFD was signed: no Unicode normalisation",
        dumps(nfc, ensure_ascii=False),
        "ManifestError",
    )
    tricky = registry_manifest(labels=['quote"back\\slash', "tab\tnew\nline\u0001\u007f", "line\u2028sep/</script>"])
    case("labels-escapes", "quotes, backslashes, control characters, DEL, U+2028", tricky, "accept")
    lone = base.replace(b'"lavender-soap"', b'"lavender-\\ud800soap"')
    case(
        "labels-lone-surrogate",
        "a lone surrogate has no UTF-8 form: nothing can be signed over it",
        lone,
        "ManifestError",
    )

    # --- floats
    for name, value in [
        ("scale-one", 1.0),
        ("scale-third", 1 / 3),
        ("scale-small", 1e-05),
        ("scale-1-255", 1 / 255),
        ("scale-large", 1e16),
    ]:
        case(
            f"float-{name}",
            f"input.scale {value!r} signed as Python writes it",
            registry_manifest(scale=value),
            "accept",
        )
    one = registry_manifest(scale=1.0)
    case(
        "float-written-as-integer",
        "scale signed as 1.0, sent as 1: integers and floats differ",
        one.replace(b'"scale":1.0', b'"scale":1'),
        "ManifestError",
    )
    small = registry_manifest(scale=1e-05)
    case(
        "float-other-spelling",
        "1e-05 sent as 0.00001000: the same double, the same canonical form",
        small.replace(b'"scale":1e-05', b'"scale":0.00001000'),
        "accept",
    )
    case("float-exponent-spelling", "1e-05 sent as 1E-5", small.replace(b'"scale":1e-05', b'"scale":1E-5'), "accept")

    # --- wire text
    case(
        "duplicate-key",
        "version twice: parsers disagree on which counts",
        base.replace(b'"version":2', b'"version":9,"version":2'),
        "ManifestError",
    )
    nan = resign({**obj, "input": {**obj["input"], "scale": float("nan")}})
    case("nan", "NaN is not JSON", dumps(nan), "ManifestError")
    inf = resign({**obj, "input": {**obj["input"], "scale": 1.0}})
    case("number-overflow", "1e400 is no double", dumps(inf).replace(b'"scale":1.0', b'"scale":1e400'), "ManifestError")
    case("utf8-bom", "a byte-order mark before the object", b"\xef\xbb\xbf" + base, "ManifestError")
    case("utf16", "UTF-16 text", base.decode().encode("utf-16"), "ManifestError")
    case(
        "invalid-utf8",
        "a byte that is not UTF-8 inside a string",
        base.replace(b"lavender", b"lav\xffnder"),
        "ManifestError",
    )
    case("not-an-object", "a JSON array", b"[" + base + b"]", "ManifestError")
    case("trailing-data", "a second value after the object", base + b" {}", "ManifestError")

    # --- schema, signed with the real key: only the schema check can refuse these
    def schema(name: str, why: str, **fields: Any) -> None:
        case(name, why, dumps(resign({**obj, **fields})), "ManifestError")

    schema("schema-unknown-field", "a field this schema does not know", priority="high")
    schema("schema-version-string", 'version "2" is a string', version="2")
    schema("schema-version-float", "version 2.0 is not an integer", version=2.0)
    schema("schema-rollback-int", "rollback 1 is not a boolean", rollback=1)
    schema("schema-version-zero", "versions start at 1", version=0)
    schema("schema-version-too-big", "2**53 is past the integers every client reads exactly", version=2**53)
    schema("schema-sha256-upper", "sha256 is lower-case hex", sha256=obj["sha256"].upper())
    schema("schema-size-zero", "an empty file", size=0)
    schema("schema-runtime-unknown", "a runtime this protocol does not name", runtime="tensorrt")
    schema("schema-served-unknown", "served is target, previous or production", served="cache")
    schema("schema-labels-not-strings", "labels are strings", labels=[1, 2])
    schema("schema-channels", "RGB only", input={**obj["input"], "channels": 4})
    schema("schema-rollout-101", "rollout_percent is 0..100", rollout_percent=101)
    schema("schema-sequence-negative", "sequence is not negative", sequence=-1)
    minimal = {
        k: v for k, v in obj.items() if k not in ("schema_version", "rollback", "rollout_percent", "sequence", "served")
    }
    case(
        "schema-defaults",
        "optional fields left out take their defaults (sequence 0, rollback false)",
        dumps(resign(minimal)),
        "accept",
    )

    # --- files (after an accepted manifest)
    files = [
        ("file-exact", "the bytes the manifest signs for", ART, "accept"),
        (
            "file-one-byte-changed",
            "same length, one byte differs",
            ART[:10] + bytes([ART[10] ^ 1]) + ART[11:],
            "IntegrityError",
        ),
        ("file-truncated", "one byte short", ART[:-1], "IntegrityError"),
        ("file-extended", "one byte more", ART + b"\0", "IntegrityError"),
        ("file-empty", "nothing", b"", "IntegrityError"),
        ("file-other-model", "another version's file", ART_V1, "IntegrityError"),
    ]
    file_cases = [
        {
            "name": n,
            "description": d,
            "manifest_case": "valid-first-install",
            "file_b64": base64.b64encode(b).decode(),
            "verdict": v,
        }
        for n, d, b, v in files
    ]

    canonical = [{"name": n, "description": d, "json": j, "canonical": c} for n, d, j, c in canonical_cases()]
    pub = KEYRING.public_keys[KEY_ID].public_bytes_raw()
    return {
        "format": 1,
        "description": "edgeloop manifest conformance vectors; see tests/conformance/README.md. Generated: do not edit.",
        "keys": {KEY_ID: base64.b64encode(pub).decode()},
        "manifest_cases": cases,
        "file_cases": file_cases,
        "canonical_cases": canonical,
        "preprocess_cases": preprocess_cases(),
        "quantize_cases": quantize_cases(),
    }


def preprocess_cases() -> list[dict[str, Any]]:
    """Source RGB pixels -> the model-size pixels `edge.runtime.to_pixels` makes of them (Pillow bilinear)."""
    import numpy as np

    from edge.runtime import to_pixels

    out = []
    for (w, h), (ow, oh) in [
        ((40, 30), (16, 16)),
        ((7, 5), (16, 16)),
        ((97, 61), (24, 24)),
        ((16, 16), (16, 16)),
        ((1, 1), (3, 3)),
        ((120, 90), (96, 96)),
        ((64, 256), (32, 8)),
    ]:
        src = np.frombuffer(artifact(f"image-{w}x{h}", w * h * 3), dtype=np.uint8).reshape(h, w, 3)
        got = to_pixels(src, (ow, oh))
        out.append(
            {
                "name": f"bilinear-{w}x{h}-to-{ow}x{oh}",
                "width": w,
                "height": h,
                "rgb_b64": base64.b64encode(src.tobytes()).decode(),
                "out_width": ow,
                "out_height": oh,
                "expected_b64": base64.b64encode(np.ascontiguousarray(got).tobytes()).decode(),
            }
        )
    return out


def quantize_cases() -> list[dict[str, Any]]:
    """Every pixel value 0..255 -> `edge.runtime.quantize` for a few dtypes, scales and zero points."""
    import numpy as np

    from edge.runtime import quantize

    pixels = np.arange(256, dtype=np.uint8)
    out = []
    for dtype, scale, zero in [("uint8", 1.0, 0), ("uint8", 2.0, 0), ("uint8", 0.3, 10), ("int8", 1.0, -128),
                               ("int8", 0.9999, -128), ("uint8", 1 / 255, 0), ("int8", 2.5, 3)]:  # fmt: skip
        q = quantize(pixels, np.dtype(dtype), scale, zero)
        out.append({"name": f"{dtype}-{scale!r}-{zero}", "dtype": dtype, "scale": scale, "zero_point": zero,
                    "expected": [int(v) for v in q]})  # fmt: skip
    return out


def canonical_cases() -> list[tuple[str, str, str, str | None]]:
    """(name, why, JSON text, its canonical form or None when it must be refused) from the reference."""
    from edge.manifest import ManifestError, parse

    texts = [
        ("key-order", "keys sorted by code point at every level", '{"b":1,"a":{"d":[3,1],"c":null}}'),
        (
            "key-order-non-ascii",
            "code point order, not UTF-16 order: U+FFFF before U+1F600",
            '{"\\ud83d\\ude00":1,"\\uffff":2,"z":3,"\\u00e9":4,"Z":5}',
        ),
        (
            "signature-dropped",
            "a top-level signature is not signed",
            '{"signature":"x","a":1,"b":{"signature":"kept"}}',
        ),
        (
            "integers",
            "integers as written, -0 as 0, big ones exactly",
            '{"a":0,"b":-0,"c":12345678901234567890,"d":-7}',
        ),
        (
            "floats",
            "floats as Python's repr: shortest round trip, .0 on whole numbers",
            '{"a":1.0,"b":1.5,"c":0.1,"d":100.0,"e":-0.0,"f":1E2,"g":2.50}',
        ),
        (
            "floats-exponents",
            "exponent below 1e-4 and from 1e16 up, two digits at least",
            '{"a":0.0001,"b":0.00001,"c":1e15,"d":1e16,"e":1.5e300,"f":5e-324,"g":123456789012345678}',
        ),
        (
            "floats-repr",
            "17-digit doubles",
            '{"a":0.3333333333333333,"b":0.1e1,"c":1.7976931348623157e308,"d":2.2250738585072014e-308}',
        ),
        (
            "strings",
            "only quote, backslash and control characters are escaped",
            '{"a":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\\u2028\\u00e9\\ud83d\\ude00"}',
        ),
        ("literals", "true, false, null, empty containers", '{"a":true,"b":false,"c":null,"d":{},"e":[]}'),
        ("whitespace", "insignificant whitespace dropped", ' {\n "a" : [ 1 , 2 ] ,\t"b":"x y"\r\n} '),
        ("duplicate-key", "refused", '{"a":1,"a":2}'),
        ("nan", "refused", '{"a":NaN}'),
        ("infinity", "refused", '{"a":-Infinity}'),
        ("overflow", "refused", '{"a":1e309}'),
        ("lone-surrogate", "refused: no UTF-8 form", '{"a":"\\udc00"}'),
    ]
    out: list[tuple[str, str, str, str | None]] = []
    for name, why, text in texts:
        try:
            data = parse(text)
            canon: str | None = canonical_bytes(data).decode("utf-8")
        except (ManifestError, ValueError):
            canon = None
        out.append((name, why, text, canon))
    return out


def render() -> str:
    return json.dumps(build(), indent=1, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if vectors.json differs from what would be written")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if OUT.read_text(encoding="utf-8") != text:
            sys.stderr.write(f"{OUT} is out of date: run python {Path(__file__).name}\n")
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

/**
 * Strict JSON for signed manifests, and its canonical form (edge/PROTOCOL.md, "Canonical JSON").
 *
 * `JSON.parse` cannot be used: it forgets whether a number was written `1` or `1.0` (the
 * reference signs those differently), silently keeps the last of two equal keys, and
 * loses integers past 2**53. This parser keeps each number's kind and refuses what the
 * reference refuses: a byte-order mark, invalid UTF-8, duplicate keys, NaN/Infinity,
 * numbers that overflow a double, trailing data.
 */

import { ManifestError } from "./errors.js";

/** A JSON number as written: integers exactly (as bigint), other numbers as the double they denote. */
export class JsonNumber {
  constructor(
    readonly isInteger: boolean,
    readonly integer: bigint,
    readonly float: number,
  ) {}
}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;
/** Object members in wire order; keys are unique (the parser refuses repeats). */
export type JsonObject = { readonly kind: "object"; readonly members: Map<string, JsonValue> };

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/y;
const ESCAPES: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

export function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof JsonNumber);
}

/** Parse wire bytes (UTF-8, nothing else) or text. Throws ManifestError naming what is wrong and where. */
export function parseJson(raw: Uint8Array | string): JsonValue {
  let text: string;
  if (typeof raw === "string") {
    text = raw;
  } else {
    try {
      text = decoder.decode(raw);
    } catch {
      throw new ManifestError("manifest is not JSON: its bytes are not UTF-8");
    }
  }
  return new Parser(text).document();
}

class Parser {
  private pos = 0;

  constructor(private readonly text: string) {}

  document(): JsonValue {
    this.space();
    const value = this.value();
    this.space();
    if (this.pos !== this.text.length) this.fail("extra data after the JSON value");
    return value;
  }

  private fail(what: string): never {
    throw new ManifestError(`manifest is not JSON: ${what} at character ${this.pos}`);
  }

  private space(): void {
    // JSON's four whitespace characters only (a BOM or U+00A0 is not whitespace).
    while (this.pos < this.text.length && " \t\n\r".includes(this.text[this.pos] as string)) this.pos++;
  }

  private value(): JsonValue {
    const c = this.text[this.pos];
    if (c === "{") return this.object();
    if (c === "[") return this.array();
    if (c === '"') return this.string();
    for (const [word, value] of [["true", true], ["false", false], ["null", null]] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return value;
      }
    }
    return this.number();
  }

  private object(): JsonObject {
    this.pos++;
    const members = new Map<string, JsonValue>();
    this.space();
    if (this.text[this.pos] === "}") {
      this.pos++;
      return { kind: "object", members };
    }
    for (;;) {
      this.space();
      if (this.text[this.pos] !== '"') this.fail("expected a key in double quotes");
      const key = this.string();
      if (members.has(key)) {
        throw new ManifestError(
          `manifest repeats the key ${JSON.stringify(key)}; refusing it (parsers disagree on which one counts)`,
        );
      }
      this.space();
      if (this.text[this.pos] !== ":") this.fail("expected ':'");
      this.pos++;
      this.space();
      members.set(key, this.value());
      this.space();
      const c = this.text[this.pos++];
      if (c === "}") return { kind: "object", members };
      if (c !== ",") this.fail("expected ',' or '}'");
    }
  }

  private array(): JsonValue[] {
    this.pos++;
    const items: JsonValue[] = [];
    this.space();
    if (this.text[this.pos] === "]") {
      this.pos++;
      return items;
    }
    for (;;) {
      this.space();
      items.push(this.value());
      this.space();
      const c = this.text[this.pos++];
      if (c === "]") return items;
      if (c !== ",") this.fail("expected ',' or ']'");
    }
  }

  private string(): string {
    this.pos++;
    let out = "";
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined) this.fail("unterminated string");
      if (c === '"') {
        this.pos++;
        return out;
      }
      if (c < " ") this.fail("control character in a string");
      if (c !== "\\") {
        out += c;
        this.pos++;
        continue;
      }
      const e = this.text[this.pos + 1];
      if (e === "u") {
        const hex = this.text.slice(this.pos + 2, this.pos + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail("bad \\u escape");
        // Surrogates stay code units: a pair forms its character, a lone one is refused when canonicalised.
        out += String.fromCharCode(parseInt(hex, 16));
        this.pos += 6;
      } else if (e !== undefined && e in ESCAPES) {
        out += ESCAPES[e];
        this.pos += 2;
      } else {
        this.fail("bad escape");
      }
    }
  }

  private number(): JsonNumber {
    NUMBER.lastIndex = this.pos;
    const match = NUMBER.exec(this.text);
    if (match === null) this.fail("expected a JSON value (NaN and Infinity are not JSON)");
    const token = match[0];
    this.pos += token.length;
    if (match[1] === undefined && match[2] === undefined) return new JsonNumber(true, BigInt(token), Number(token));
    const value = Number(token);
    if (!Number.isFinite(value)) {
      throw new ManifestError(`manifest number ${token.slice(0, 40)} overflows a double; refusing it`);
    }
    return new JsonNumber(false, 0n, value);
  }
}

/** A double as Python's `repr` (and so `json.dumps`) writes it: shortest round trip, `.0` on whole numbers. */
export function pythonFloat(x: number): string {
  if (!Number.isFinite(x)) throw new ManifestError(`${x} has no JSON form`);
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  // String() gives the shortest digits that round-trip; only the layout differs from Python's.
  const [mantissa = "", exp = "0"] = String(Math.abs(x)).split("e");
  const point = mantissa.includes(".") ? mantissa.indexOf(".") : mantissa.length;
  let digits = mantissa.replace(".", "");
  let exponent = point - 1 + Number(exp); // of the first digit
  while (digits.startsWith("0")) {
    digits = digits.slice(1);
    exponent--;
  }
  digits = digits.replace(/0+$/, "");
  if (exponent < -4 || exponent >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${exponent < 0 ? "-" : "+"}${String(Math.abs(exponent)).padStart(2, "0")}`;
  }
  if (exponent < 0) return `${sign}0.${"0".repeat(-exponent - 1)}${digits}`;
  const whole = digits.slice(0, exponent + 1).padEnd(exponent + 1, "0");
  return `${sign}${whole}.${digits.slice(exponent + 1) || "0"}`;
}

function codePointCompare(a: string, b: string): number {
  // Python sorts keys by code point; JavaScript's default sort compares UTF-16 units (U+FFFF > U+1F600 there).
  const x = Array.from(a, (c) => c.codePointAt(0) as number);
  const y = Array.from(b, (c) => c.codePointAt(0) as number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  }
  return x.length - y.length;
}

function quote(s: string): string {
  let out = '"';
  for (const c of s) {
    const code = c.codePointAt(0) as number;
    if (code >= 0xd800 && code <= 0xdfff) {
      throw new ManifestError("manifest holds a lone surrogate, which has no UTF-8 form; refusing it");
    }
    if (c === '"') out += '\\"';
    else if (c === "\\") out += "\\\\";
    else if (c === "\n") out += "\\n";
    else if (c === "\r") out += "\\r";
    else if (c === "\t") out += "\\t";
    else if (c === "\b") out += "\\b";
    else if (c === "\f") out += "\\f";
    else if (code < 0x20) out += `\\u${code.toString(16).padStart(4, "0")}`;
    else out += c;
  }
  return out + '"';
}

/** The canonical text of a value: sorted keys, no spaces, numbers as the reference writes them. */
export function canonicalText(value: JsonValue): string {
  if (value === null) return "null";
  if (value === true) return "true";
  if (value === false) return "false";
  if (typeof value === "string") return quote(value);
  if (value instanceof JsonNumber) return value.isInteger ? value.integer.toString() : pythonFloat(value.float);
  if (Array.isArray(value)) return `[${value.map(canonicalText).join(",")}]`;
  const keys = [...value.members.keys()].sort(codePointCompare);
  return `{${keys.map((k) => `${quote(k)}:${canonicalText(value.members.get(k) as JsonValue)}`).join(",")}}`;
}

/** What gets signed: the canonical JSON of every member but a top-level `signature`, as UTF-8. */
export function canonicalBytes(value: JsonObject): Uint8Array {
  const members = new Map(value.members);
  members.delete("signature");
  return new TextEncoder().encode(canonicalText({ kind: "object", members }));
}

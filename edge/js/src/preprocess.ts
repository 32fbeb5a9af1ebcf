/**
 * Preprocessing identical to the Python SDK's (`edge.runtime.to_pixels` and `quantize`), byte for byte:
 * the model takes raw RGB pixels at its size (normalisation is inside the model), so the only steps
 * are the resize and the input dtype. A canvas `drawImage` resize is not used: browsers differ from
 * each other and from Pillow, and top-1 labels would drift at the margins.
 *
 * The resize is Pillow's BILINEAR (libImaging/Resample.c): a triangle filter widened by the
 * downscale factor (so it antialiases), separable, horizontal pass then vertical, with 22-bit
 * fixed-point weights and rounding exactly as there.
 */

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

interface Coeffs {
  readonly ksize: number;
  readonly bounds: Int32Array; // per output index: first source index, count
  readonly weights: Int32Array; // ksize per output index, fixed point
}

function triangle(x: number): number {
  const a = Math.abs(x);
  return a < 1 ? 1 - a : 0;
}

// precompute_coeffs + normalize_coeffs_8bpc, in the same operation order (doubles, then C truncation).
function coefficients(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 1 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = triangle((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < ksize; x++) {
      const w = x < xmax && ww !== 0 ? (k[x] as number) / ww : x < xmax ? (k[x] as number) : 0;
      weights[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, weights };
}

function clip8(ss: number): number {
  const v = Math.floor(ss / ONE); // an arithmetic shift by PRECISION_BITS
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * `rgb` (height x width x channels, row-major; channels 3, or 4 from a canvas, alpha ignored)
 * as RGB at `outWidth` x `outHeight`.
 */
export function toPixels(
  data: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  outWidth: number,
  outHeight: number,
  channels: 3 | 4 = 3,
): Uint8Array {
  if (data.length !== width * height * channels) {
    throw new RangeError(`${data.length} bytes is not ${width}x${height}x${channels}; pass the image's own size`);
  }
  let src = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < src.length; i += 3, j += channels) {
    src[i] = data[j] as number;
    src[i + 1] = data[j + 1] as number;
    src[i + 2] = data[j + 2] as number;
  }
  let w = width;
  const vert = coefficients(height, outHeight);
  if (outWidth !== width) {
    // Only the source rows the vertical pass will read are resized horizontally.
    const first = vert.bounds[0] as number;
    const last = (vert.bounds[outHeight * 2 - 2] as number) + (vert.bounds[outHeight * 2 - 1] as number);
    const rows = outHeight !== height ? last - first : height;
    const start = outHeight !== height ? first : 0;
    const hor = coefficients(width, outWidth);
    const tmp = new Uint8Array(outWidth * rows * 3);
    for (let y = 0; y < rows; y++) {
      const row = (y + start) * w * 3;
      for (let xx = 0; xx < outWidth; xx++) {
        const xmin = hor.bounds[xx * 2] as number;
        const xmax = hor.bounds[xx * 2 + 1] as number;
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        for (let x = 0; x < xmax; x++) {
          const kw = hor.weights[xx * hor.ksize + x] as number;
          const p = row + (x + xmin) * 3;
          s0 += (src[p] as number) * kw;
          s1 += (src[p + 1] as number) * kw;
          s2 += (src[p + 2] as number) * kw;
        }
        const o = (y * outWidth + xx) * 3;
        tmp[o] = clip8(s0);
        tmp[o + 1] = clip8(s1);
        tmp[o + 2] = clip8(s2);
      }
    }
    src = tmp;
    w = outWidth;
    if (outHeight !== height) for (let i = 0; i < outHeight; i++) vert.bounds[i * 2] = (vert.bounds[i * 2] as number) - first;
  }
  if (outHeight === height) return src;
  const out = new Uint8Array(w * outHeight * 3);
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = vert.bounds[yy * 2] as number;
    const ymax = vert.bounds[yy * 2 + 1] as number;
    for (let xx = 0; xx < w; xx++) {
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      for (let y = 0; y < ymax; y++) {
        const kw = vert.weights[yy * vert.ksize + y] as number;
        const p = ((y + ymin) * w + xx) * 3;
        s0 += (src[p] as number) * kw;
        s1 += (src[p + 1] as number) * kw;
        s2 += (src[p + 2] as number) * kw;
      }
      const o = (yy * w + xx) * 3;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
  return out;
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export type InputDtype = "float32" | "uint8" | "int8";

/** Raw pixels (0..255) in the model's input dtype: round(p / scale + zero_point) in float32, half to even, clipped. */
export function quantize(
  pixels: Uint8Array,
  dtype: InputDtype,
  scale: number | null,
  zeroPoint: number | null,
): Float32Array | Uint8Array | Int8Array {
  if (dtype === "float32") return Float32Array.from(pixels);
  if (!scale) return dtype === "uint8" ? Uint8Array.from(pixels) : Int8Array.from(pixels);
  const [lo, hi] = dtype === "uint8" ? [0, 255] : [-128, 127];
  const s = Math.fround(scale);
  const zero = zeroPoint ?? 0;
  const out = dtype === "uint8" ? new Uint8Array(pixels.length) : new Int8Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) {
    // float32 division then float32 addition, as NumPy does for a float32 array and Python scalars.
    const q = roundHalfEven(Math.fround(Math.fround((pixels[i] as number) / s) + zero));
    out[i] = Math.min(Math.max(q, lo), hi);
  }
  return out;
}

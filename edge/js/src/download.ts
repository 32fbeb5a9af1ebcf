/**
 * Fetch one model file into the store's partial area: resumable, bounded in size and time, then hashed whole.
 *
 * A cut resumes with `Range: bytes=<have>-` and `If-Range: <etag>`; a changed ETag, an ignored
 * range or a Content-Range that does not start at <have> throws the partial away. Bytes past
 * the manifest's size are never kept. One deadline covers the whole download, resumes included.
 */

import { sha256 as sha256Hash } from "@noble/hashes/sha256";
import { bytesToHex } from "@noble/hashes/utils";

import type { Fetch } from "./client.js";
import { DeadlineExceeded, DownloadError, IntegrityError, OversizeError } from "./errors.js";
import type { ModelStore } from "./store.js";

export interface DownloadOptions {
  /** Whole download, across resumes. */
  readonly deadlineS?: number;
  /** Connection cuts tolerated per download. */
  readonly maxResumes?: number;
  readonly resumeBackoffS?: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly fetch?: Fetch;
  readonly clock?: () => number;
  readonly sleep?: (s: number) => Promise<void>;
}

export interface DownloadResult {
  readonly data: Uint8Array;
  readonly resumes: number;
  readonly restarts: number;
}

/** A cut connection or a retryable status: resume. */
class Cut extends Error {}

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;

export async function downloadArtifact(
  url: string,
  store: ModelStore,
  expected: { readonly sha256: string; readonly size: number },
  options: DownloadOptions = {},
): Promise<DownloadResult> {
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  const clock = options.clock ?? (() => performance.now() / 1000);
  const sleep = options.sleep ?? ((s: number) => new Promise<void>((r) => setTimeout(r, s * 1000)));
  const deadline = clock() + (options.deadlineS ?? 600);
  const maxResumes = options.maxResumes ?? 20;
  const { sha256, size } = expected;
  let resumes = 0;
  let restarts = 0;

  const restart = async (): Promise<void> => {
    restarts++;
    await store.clearPartial(sha256);
  };
  const fail = async (err: Error): Promise<never> => {
    await store.clearPartial(sha256);
    throw err;
  };

  for (;;) {
    const partial = await store.loadPartial(sha256);
    let have = partial?.data.length ?? 0;
    if (have > size) {
      await restart();
      continue;
    }
    if (clock() > deadline) {
      throw new DeadlineExceeded(`${url}: ${have}/${size} B after the ${options.deadlineS ?? 600} s deadline; will resume later`);
    }
    if (have === size && partial !== null) {
      if (bytesToHex(sha256Hash(partial.data)) !== sha256) {
        return fail(new IntegrityError(`${url}: the complete partial file does not match sha256 ${sha256}`));
      }
      await store.clearPartial(sha256);
      return { data: partial.data, resumes, restarts };
    }
    const headers: Record<string, string> = { ...options.headers, "accept-encoding": "identity" };
    if (have > 0) {
      headers.range = `bytes=${have}-`;
      if (partial?.etag) headers["if-range"] = partial.etag;
    }
    try {
      let response: Response;
      try {
        response = await fetchImpl(url, { headers, signal: AbortSignal.timeout(Math.max(1, Math.ceil((deadline - clock()) * 1000))) });
      } catch (err) {
        throw new Cut(String(err));
      }
      const status = response.status;
      if (status === 416) {
        await restart();
        continue;
      }
      if (status >= 500 || status === 429) throw new Cut(`server answered ${status}`);
      if (status >= 400) return fail(new DownloadError(`${url}: registry answered ${status}; not retrying this manifest`));
      const etag = response.headers.get("etag");
      if (status === 206) {
        const m = CONTENT_RANGE.exec(response.headers.get("content-range") ?? "");
        if ((partial?.etag && etag && etag !== partial.etag) || m === null || Number(m[1]) !== have) {
          await response.body?.cancel();
          await restart();
          continue;
        }
      } else {
        if (have > 0) await restart();
        have = 0;
      }
      const declared = response.headers.get("content-length");
      if (declared !== null && /^\d+$/.test(declared) && have + Number(declared) > size) {
        await response.body?.cancel();
        return fail(new OversizeError(`${url}: server announces ${have + Number(declared)} B; manifest says ${size} B`));
      }
      const reader = response.body?.getReader();
      try {
        for (;;) {
          if (reader === undefined) break;
          const { done, value } = await reader.read();
          if (done) break;
          if (have + value.length > size) {
            await reader?.cancel();
            return fail(new OversizeError(`${url}: server sent more than the manifest's ${size} B; stopped at ${size}`));
          }
          // Each chunk is kept as it arrives: a cut loses nothing already received.
          await store.appendPartial(sha256, value, etag);
          have += value.length;
          if (clock() > deadline) {
            throw new DeadlineExceeded(`${url}: ${have}/${size} B after the deadline; will resume later`);
          }
        }
      } catch (err) {
        if (err instanceof DownloadError || err instanceof IntegrityError) throw err;
        throw new Cut(String(err));
      }
      if (have < size) throw new Cut(`stream ended at ${have}/${size} B`);
    } catch (err) {
      if (!(err instanceof Cut)) throw err;
      resumes++;
      if (resumes > maxResumes) throw new DownloadError(`${url}: gave up after ${maxResumes} resumes: ${err.message}`);
      const wait = Math.min((options.resumeBackoffS ?? 0.5) * 2 ** Math.min(resumes - 1, 6), Math.max(0, deadline - clock()));
      await sleep(wait);
    }
  }
}

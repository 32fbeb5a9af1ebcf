/**
 * The checks an update passes before it touches the store, in the reference's order (edge/_verify.py):
 *
 * 1. Ed25519 signature with a pinned key (`verifyManifest`)        -> ManifestError
 *    (@noble/ed25519, or any `SignatureCheck`: the updater uses WebCrypto's where the platform has it)
 * 2. not expired, not issued in the future (a frozen or replayed answer) -> ManifestExpired
 * 3. model name and alias the device asked for                     -> WrongModel
 * 4. alias sequence not below the highest seen here (a replay)     -> StaleManifest
 * 5. version not lower than installed, unless a signed rollback
 *    issued after the manifest that installed the current model    -> RollbackRefused
 * 6. runtime and labels as expected                                -> WrongModel
 * 7. after download: the bytes' size and sha256                    -> IntegrityError
 */

import { sha256 } from "@noble/hashes/sha256";
import { bytesToHex } from "@noble/hashes/utils";

import { IntegrityError, ManifestExpired, RollbackRefused, StaleManifest, WrongModel } from "./errors.js";
import { instantUs, type Manifest, type PublicKeys, type SignatureCheck, verifyManifest, verifyManifestWith } from "./manifest.js";

/** What this device will accept, beside a valid signature. */
export interface Expectations {
  readonly model: string;
  readonly alias?: string;
  readonly installedVersion?: number | null;
  /** The alias sequence of the manifest that installed the current model (null: bundled or unknown). */
  readonly installedSequence?: number | null;
  /** The highest alias sequence this device has verified for (model, alias); null: none yet. */
  readonly seenSequence?: number | null;
  readonly installedLabels?: readonly string[];
  readonly runtimes?: readonly string[];
  readonly allowLabelChanges?: boolean;
  readonly maxClockSkewS?: number;
}

/** Steps 1-6: a manifest that is safe to download, or a VerificationError saying why not. */
export function checkManifest(
  raw: Uint8Array | string,
  publicKeys: PublicKeys,
  expect: Expectations,
  now: Date = new Date(),
): Manifest {
  return checkRules(verifyManifest(raw, publicKeys), expect, now);
}

/** `checkManifest` with another signature check for step 1 (the updater: WebCrypto where present). */
export async function checkManifestWith(
  raw: Uint8Array | string,
  publicKeys: PublicKeys,
  expect: Expectations,
  now: Date,
  check: SignatureCheck,
): Promise<Manifest> {
  return checkRules(await verifyManifestWith(raw, publicKeys, check), expect, now);
}

/** Steps 2-6 on a manifest whose signature verified. */
function checkRules(m: Manifest, expect: Expectations, now: Date): Manifest {
  const alias = expect.alias ?? "production";
  const skewUs = (expect.maxClockSkewS ?? 300) * 1e6;
  const nowUs = now.getTime() * 1000;
  const what = `${m.model}@${m.alias} v${m.version} (sequence ${m.sequence})`;
  if (instantUs(m.expires_at) + skewUs < nowUs) {
    throw new ManifestExpired(
      `manifest for ${what} expired at ${m.expires_at} (now ${now.toISOString()}); the registry must re-issue it`,
    );
  }
  if (instantUs(m.issued_at) - skewUs > nowUs) {
    throw new ManifestExpired(`manifest issued in the future (${m.issued_at}); check the clock`);
  }
  // Identity before any version logic: a signed answer to another question says nothing about ours.
  if (m.model !== expect.model) {
    throw new WrongModel(`manifest is for model ${JSON.stringify(m.model)}; this app runs ${JSON.stringify(expect.model)}`);
  }
  if (m.alias !== alias) {
    throw new WrongModel(
      `manifest is for alias ${JSON.stringify(m.alias)} of ${JSON.stringify(m.model)}; this device follows ${JSON.stringify(alias)}`,
    );
  }
  const seen = expect.seenSequence ?? null;
  if (seen !== null && m.sequence < seen) {
    throw new StaleManifest(`manifest for ${what} is older than sequence ${seen} already seen here (a replayed answer); refusing it`);
  }
  const installed = expect.installedVersion ?? null;
  if (installed !== null && m.version < installed) {
    if (!m.rollback) {
      throw new RollbackRefused(`manifest offers ${what} below installed v${installed} and is not a signed rollback`);
    }
    const installedSequence = expect.installedSequence ?? null;
    if (installedSequence !== null && m.sequence <= installedSequence) {
      throw new RollbackRefused(
        `rollback manifest ${what} is not newer than sequence ${installedSequence} that installed v${installed} (a replayed rollback); refusing it`,
      );
    }
  }
  const runtimes = expect.runtimes ?? ["litert", "onnxruntime"];
  if (!runtimes.includes(m.runtime)) {
    throw new WrongModel(`manifest variant ${m.variant} needs ${m.runtime}; installed: ${runtimes.join(", ")}`);
  }
  const old = expect.installedLabels ?? [];
  if (old.length > 0 && !expect.allowLabelChanges) {
    const i = old.findIndex((label, j) => m.labels[j] !== label);
    if (i >= 0) {
      throw new WrongModel(
        `v${m.version} labels do not extend the installed ones (index ${i}: ${JSON.stringify(old[i])} -> ${JSON.stringify(m.labels[i] ?? "<missing>")}); set allowLabelChanges to accept`,
      );
    }
  }
  return m;
}

/** Step 7: the downloaded bytes are exactly the ones the manifest signs for. */
export function checkBytes(data: Uint8Array, manifest: Manifest): void {
  if (data.length !== manifest.size) {
    throw new IntegrityError(`${data.length} B, manifest says ${manifest.size} B`);
  }
  const digest = bytesToHex(sha256(data));
  if (digest !== manifest.sha256) throw new IntegrityError(`sha256 ${digest} differs from the manifest's ${manifest.sha256}`);
}

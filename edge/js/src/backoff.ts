/** Poll timing (edge/PROTOCOL.md section 11): jittered intervals, exponential back-off, capped Retry-After. */

export type Random = () => number;

/** The n-th consecutive failure's wait: full jitter in [c/2, c], never below Retry-After, both capped at `maximumS`. */
export function backoffDelay(
  failures: number,
  initialS: number,
  maximumS: number,
  retryAfterS: number | null,
  random: Random = Math.random,
): number {
  const ceiling = Math.min(maximumS, initialS * 2 ** Math.max(failures - 1, 0));
  const delay = ceiling / 2 + random() * (ceiling / 2);
  // A hostile or broken server sending Retry-After: 99999999 must not silence a device for years.
  return Math.max(delay, Math.min(retryAfterS ?? 0, maximumS));
}

/** The wait between two successful polls: interval x (1 ± jitter), so a fleet does not poll in lockstep. */
export function pollDelay(intervalS: number, jitter: number, random: Random = Math.random): number {
  return intervalS * (1 - jitter + random() * 2 * jitter);
}

/** Seconds from a Retry-After header (ASCII delta-seconds or an HTTP date); null when unreadable. */
export function parseRetryAfter(value: string | null, now: Date = new Date()): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^[0-9]+$/.test(text)) return Number(text);
  // HTTP dates only (IMF-fixdate and the obsolete forms all name a weekday or a month in letters).
  if (!/[A-Za-z]{3}/.test(text)) return null;
  const when = Date.parse(text);
  if (Number.isNaN(when)) return null;
  return Math.max(0, (when - now.getTime()) / 1000);
}

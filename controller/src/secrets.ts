/**
 * Webhook URLs are secrets (a Slack or Teams incoming webhook is its own credential; others carry a token in
 * the query). Everything the controller shows or logs carries them redacted: the scheme and host, and a short
 * fingerprint that tells two targets apart (the first 8 hex digits of the URL's SHA-256; from that nobody can
 * recover a token of any useful length). A spec sent back with a redacted URL (`modelroll get -o yaml`, edited,
 * `apply`) keeps the URL the rollout has under that fingerprint (restoreRedacted).
 */
import { createHash } from "node:crypto";

const REDACTED = /^(https?:\/\/[^/\s]*)\/<redacted:([0-9a-f]{8})>$/;

export function fingerprint(url: string): string {
  return createHash("sha256").update(url).digest("hex").slice(0, 8);
}

/** "https://hooks.slack.com/<redacted:1a2b3c4d>": the host is kept (no credentials), the rest is not. */
export function redactUrl(url: string): string {
  if (isRedacted(url)) return url;
  let origin = "invalid-url:/";
  try {
    const parsed = new URL(url);
    origin = `${parsed.protocol}//${parsed.host}`;
  } catch {
    // Shown as is would leak whatever it is; the fingerprint still tells it apart.
  }
  return `${origin}/<redacted:${fingerprint(url)}>`;
}

export function isRedacted(value: string): boolean {
  return REDACTED.test(value);
}

/** Where an error text names the URL (some HTTP client errors do), the redacted form instead. */
export function scrubUrl(text: string, url: string): string {
  if (!text.includes(url)) {
    // The path alone (a token) may appear without the origin.
    try {
      const { pathname, search } = new URL(url);
      const secret = pathname + search;
      if (secret.length > 1 && text.includes(secret)) return text.split(secret).join(`/<redacted:${fingerprint(url)}>`);
    } catch {
      return text;
    }
    return text;
  }
  return text.split(url).join(redactUrl(url));
}

/**
 * A copy of `value` with every string under a key named `url` redacted: the release part of a spec as GET
 * shows it (notification targets, webhook gates, the finalize webhook).
 */
export function redactUrls<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => redactUrls(v)) as T;
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    out[key] = key === "url" && typeof v === "string" ? redactUrl(v) : redactUrls(v);
  }
  return out as T;
}

/**
 * `next` (a spec being applied) with each redacted `url` replaced by the URL of the same fingerprint found in
 * `current` (the rollout's spec as accepted). A redacted URL without a match stays, and the spec check then
 * refuses it at its pointer.
 */
export function restoreRedacted<T>(next: T, current: unknown): T {
  const known = new Map<string, string>();
  collectUrls(current, known);
  if (known.size === 0) return next;
  const walk = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(walk);
    if (value === null || typeof value !== "object") return value;
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      const id = key === "url" && typeof v === "string" ? REDACTED.exec(v)?.[2] : undefined;
      out[key] = id !== undefined && known.has(id) ? known.get(id) : walk(v);
    }
    return out;
  };
  return walk(next) as T;
}

function collectUrls(value: unknown, into: Map<string, string>): void {
  if (Array.isArray(value)) {
    for (const v of value) collectUrls(v, into);
    return;
  }
  if (value === null || typeof value !== "object") return;
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (key === "url" && typeof v === "string" && !isRedacted(v)) into.set(fingerprint(v), v);
    else collectUrls(v, into);
  }
}

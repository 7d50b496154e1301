/**
 * Open event streams (GET /v1/events and GET /v1/rollouts/{name}/events together), bounded, with slots kept
 * for the API token's holders. The filter token sits in every sidecar's plugin config and may read, so anyone
 * who can see one sidecar's config could otherwise open every stream and lock the operators of a release out
 * of their own dashboard. Readers (the filter token) get `max - reserved` streams at most; writers get all.
 * With no tokens configured (loopback only) every caller is a writer.
 */
import { UnavailableError } from "../errors.ts";
import type { Access } from "../http/auth.ts";

export const DEFAULT_MAX_EVENT_STREAMS = 256;

/** The slots kept for writers out of `max`: an eighth, at least 1 (and none when there is only one). */
export function reservedFor(max: number): number {
  return max <= 1 ? 0 : Math.max(1, Math.floor(max / 8));
}

export class StreamSlots {
  readonly reserved: number;
  #open = 0;
  #readers = 0;

  constructor(readonly max: number = DEFAULT_MAX_EVENT_STREAMS) {
    if (!Number.isInteger(max) || max < 1) throw new Error(`event streams: the limit must be a positive integer, got ${max}`);
    this.reserved = reservedFor(max);
  }

  get open(): number {
    return this.#open;
  }

  /** A slot for a stream about `subject`, or a 503 saying why; the returned function gives it back (once). */
  take(access: Exclude<Access, "open">, subject: string): () => void {
    if (this.#open >= this.max) throw new UnavailableError(`${subject}: too many open event streams (${this.max}); try again later`);
    const reader = access === "read";
    if (reader && this.#readers >= this.max - this.reserved) {
      throw new UnavailableError(
        `${subject}: too many open event streams for the read-only token (${this.max - this.reserved}; ${this.reserved} are kept for the API token); try again later`,
      );
    }
    this.#open++;
    if (reader) this.#readers++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.#open--;
      if (reader) this.#readers--;
    };
  }
}

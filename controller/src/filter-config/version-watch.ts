export type WaitOutcome = "changed" | "timeout" | "closed" | "aborted";

interface Waiter {
  sinceVersion: number;
  finish(outcome: WaitOutcome): void;
}

/**
 * Lets long-polls sleep until the config version moves. A change wakes every waiter in the same tick
 * (no polling loop), because this is the path a rollback takes to reach the filters.
 */
export class VersionWatch {
  readonly #waiters = new Set<Waiter>();
  #closed = false;

  constructor(private readonly currentVersion: () => number) {}

  /** Number of requests currently held. */
  get held(): number {
    return this.#waiters.size;
  }

  waitForChange(sinceVersion: number, timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome> {
    if (this.#closed) return Promise.resolve("closed");
    if (this.currentVersion() !== sinceVersion) return Promise.resolve("changed");
    if (signal?.aborted) return Promise.resolve("aborted");

    return new Promise<WaitOutcome>((resolve) => {
      const onAbort = () => waiter.finish("aborted");
      const timer = setTimeout(() => waiter.finish("timeout"), Math.max(0, timeoutMs));
      const waiter: Waiter = {
        sinceVersion,
        finish: (outcome) => {
          if (!this.#waiters.delete(waiter)) return;
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          resolve(outcome);
        },
      };
      this.#waiters.add(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Call after every version change. */
  notify(): void {
    const version = this.currentVersion();
    for (const waiter of [...this.#waiters]) {
      if (waiter.sinceVersion !== version) waiter.finish("changed");
    }
  }

  /** Releases every held request so that server shutdown does not wait for their timeouts. */
  close(): void {
    this.#closed = true;
    for (const waiter of [...this.#waiters]) waiter.finish("closed");
  }
}

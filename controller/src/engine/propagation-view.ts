/** The propagation wait's shapes (propagation.ts), apart so that the engine state can hold them without a cycle. */

export interface PropagationPolicy {
  /** After `waitSeconds`, the window starts once this share of the proxies run the version (1: all, always). */
  share: number;
  waitSeconds: number;
}

/** Kept in the state while a stage waits, and once its window started (for the views). */
export interface PropagationState {
  /** When the stage's weights were decided. */
  since: number;
  /** Set once the window started. */
  confirmed: PropagationView | null;
}

export interface PropagationView {
  required: number;
  /** When the weights were decided, and when the window started (null while waiting). */
  since: number;
  confirmedAt: number | null;
  /** "all": every proxy runs the version; "share": enough of them after the wait; "unknown": none could be read after the wait. */
  rule: "all" | "share" | "unknown" | null;
  ready: number;
  total: number;
  /** Proxies not (yet) running the version: which, what they run, why it cannot be told. */
  laggards: Array<{ proxy: string; oldest: number | null; note: string | null }>;
  policy: PropagationPolicy;
  error: string | null;
}

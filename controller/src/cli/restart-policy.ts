/**
 * When the launcher starts a crashed controller again (pure). A crash is restarted after a delay that doubles
 * with each crash in a row (the first at `firstDelayMs`), up to `maxDelayMs`; a controller that ran at least
 * `stableAfterMs` before it crashed starts a new count. After `maxCrashesInARow` crashes in a row the launcher stops
 * trying and says so: Envoy keeps serving on the last config it got, and a restart by hand (SIGUSR2) starts a
 * new count. A count of 0 never restarts.
 */
export interface RestartPolicy {
  firstDelayMs: number;
  maxDelayMs: number;
  maxCrashesInARow: number;
  stableAfterMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = { firstDelayMs: 250, maxDelayMs: 30_000, maxCrashesInARow: 10, stableAfterMs: 60_000 };

/** The environment variable that sets maxCrashesInARow (0..1000). */
export const RESTARTS_ENV = "MODELROLL_CONTROLLER_RESTARTS";

export type AfterCrash = { restartInMs: number; crashesInARow: number } | { giveUp: true; crashesInARow: number };

/**
 * What to do after a crash: `crashesBefore` crashes in a row came before this one; `ranForMs` is how long the
 * controller that crashed had been up (null: it crashed before it said it was running).
 */
export function afterCrash(policy: RestartPolicy, crashesBefore: number, ranForMs: number | null): AfterCrash {
  const crashesInARow = (ranForMs !== null && ranForMs >= policy.stableAfterMs ? 0 : crashesBefore) + 1;
  if (crashesInARow > policy.maxCrashesInARow) return { giveUp: true, crashesInARow };
  const delay = policy.firstDelayMs * 2 ** Math.min(crashesInARow - 1, 30);
  return { restartInMs: Math.min(delay, policy.maxDelayMs), crashesInARow };
}

/** The policy with the environment's bound; an invalid value is an error naming the variable. */
export function restartPolicyFrom(env: Record<string, string | undefined>): RestartPolicy {
  const text = env[RESTARTS_ENV];
  if (text === undefined || text === "") return DEFAULT_RESTART_POLICY;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 1000) throw new Error(`${RESTARTS_ENV}: expected an integer 0..1000 (crashes in a row restarted), got '${text}'`);
  return { ...DEFAULT_RESTART_POLICY, maxCrashesInARow: n };
}

// The leader election flags of `npm run controller` in Kubernetes mode (kube/lease.ts), decided without side effects.
import { DEFAULT_LEASE_TIMING, timingError, type LeaseTiming } from "../kube/lease-timing.ts";

export const LEASE_FLAGS = ["--leader-elect", "--lease-name", "--lease-duration", "--renew-deadline", "--retry-period"] as const;

export const DEFAULT_LEASE_NAME = "modelroll-controller";

export interface LeaseSettings {
  /** Elect a leader among replicas (default true in Kubernetes mode); false: this replica always leads (one replica only). */
  leaderElect: boolean;
  leaseName: string;
  timing: LeaseTiming;
}

export const LEASE_USAGE = `  --leader-elect=true|false  elect one leader among replicas with a Lease (kube mode; default true); false only
                      for a single replica                      (env MODELROLL_LEADER_ELECT)
  --lease-name        the coordination.k8s.io/v1 Lease in --namespace (env MODELROLL_LEASE_NAME, default ${DEFAULT_LEASE_NAME})
  --lease-duration    how long a leader's renew keeps others away, whole seconds (default ${DEFAULT_LEASE_TIMING.leaseDurationMs / 1000}s)
  --renew-deadline    a leader that could not renew for this long stops leading (default ${DEFAULT_LEASE_TIMING.renewDeadlineMs / 1000}s)
  --retry-period      between attempts to take or renew the Lease (default ${DEFAULT_LEASE_TIMING.retryPeriodMs}ms)`;

/** "3s", "500ms", "1.5s" or a plain number of seconds, in milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text.trim());
  if (!m) throw new Error(`${flag}: expected a duration like 3s or 500ms, got '${text}'`);
  const ms = m[2] === "ms" ? Number(m[1]) : Number(m[1]) * 1000;
  if (!(ms > 0 && ms <= 3_600_000)) throw new Error(`${flag}: expected a duration above 0 and at most 1h, got '${text}'`);
  return Math.round(ms);
}

export function leaseSettings(given: Map<string, string>, env: Record<string, string | undefined>): LeaseSettings {
  const elect = given.get("--leader-elect") ?? env.MODELROLL_LEADER_ELECT ?? "true";
  if (elect !== "true" && elect !== "false") throw new Error(`--leader-elect: expected true or false, got '${elect}'`);
  const leaseName = given.get("--lease-name") ?? env.MODELROLL_LEASE_NAME ?? DEFAULT_LEASE_NAME;
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(leaseName)) throw new Error(`--lease-name: expected a DNS subdomain name, got '${leaseName}'`);
  const duration = (flag: string, envName: string, fallback: number) => {
    const text = given.get(flag) ?? env[envName];
    return text === undefined ? fallback : parseDuration(text, flag);
  };
  const timing: LeaseTiming = {
    leaseDurationMs: duration("--lease-duration", "MODELROLL_LEASE_DURATION", DEFAULT_LEASE_TIMING.leaseDurationMs),
    renewDeadlineMs: duration("--renew-deadline", "MODELROLL_RENEW_DEADLINE", DEFAULT_LEASE_TIMING.renewDeadlineMs),
    retryPeriodMs: duration("--retry-period", "MODELROLL_RETRY_PERIOD", DEFAULT_LEASE_TIMING.retryPeriodMs),
  };
  const invalid = timingError(timing);
  if (invalid) throw new Error(invalid);
  return { leaderElect: elect === "true", leaseName, timing };
}

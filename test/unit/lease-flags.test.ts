// The leader election flags of `npm run controller -- --state kube` (cli/lease-flags.ts through planController).
import { describe, expect, it } from "vitest";
import { planController } from "../../controller/src/cli/controller-plan.ts";
import { parseDuration } from "../../controller/src/cli/lease-flags.ts";

const kube = (args: string[], env: Record<string, string> = {}) => planController(["--state", "kube", "--kubeconfig", "/k", ...args], env);

describe("leader election flags", () => {
  it("elect by default in kube mode, with the defaults for at most ~4 s without a leader", () => {
    const r = kube([]);
    expect(r).toMatchObject({
      plan: {
        kube: {
          kubeconfig: "/k",
          election: { leaderElect: true, leaseName: "modelroll-controller", timing: { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 } },
        },
      },
    });
  });

  it("reads durations as client-go writes them, flags before the environment", () => {
    const r = kube(["--lease-duration", "15s", "--renew-deadline=10s", "--retry-period", "2s", "--lease-name", "ml-rollouts"], {
      MODELROLL_LEASE_DURATION: "4s",
    });
    expect(r).toMatchObject({
      plan: { kube: { election: { leaseName: "ml-rollouts", timing: { leaseDurationMs: 15000, renewDeadlineMs: 10000, retryPeriodMs: 2000 } } } },
    });
    expect(kube(["--leader-elect=false"])).toMatchObject({ plan: { kube: { election: { leaderElect: false } } } });
    expect(parseDuration("750ms", "--retry-period")).toBe(750);
    expect(parseDuration("1.5", "--retry-period")).toBe(1500);
  });

  it("refuses unsafe or malformed settings, naming the flag", () => {
    expect(kube(["--renew-deadline", "3s"])).toEqual({ error: expect.stringMatching(/^--renew-deadline \(3000 ms\) must be shorter than --lease-duration/) });
    expect(kube(["--lease-duration", "2500ms"])).toEqual({ error: expect.stringMatching(/whole seconds/) });
    expect(kube(["--retry-period", "soon"])).toEqual({ error: "--retry-period: expected a duration like 3s or 500ms, got 'soon'" });
    expect(kube(["--leader-elect=maybe"])).toEqual({ error: "--leader-elect: expected true or false, got 'maybe'" });
    expect(kube(["--lease-name", "Bad_Name"])).toEqual({ error: expect.stringMatching(/^--lease-name/) });
    expect(planController(["--lease-name", "x"], {})).toEqual({
      error: "--lease-name: leader election is for --state kube (a state file allows one controller)",
    });
  });
});

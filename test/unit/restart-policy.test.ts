// When the launcher starts a crashed controller again: doubling delays to a cap, a new count after a long run,
// giving up after the bound, and the bound from the environment.
import { describe, expect, it } from "vitest";
import { afterCrash, DEFAULT_RESTART_POLICY, restartPolicyFrom, RESTARTS_ENV } from "../../controller/src/cli/restart-policy.ts";

const policy = { firstDelayMs: 250, maxDelayMs: 2000, maxCrashesInARow: 5, stableAfterMs: 60_000 };

describe("the controller's restart policy", () => {
  it("doubles the delay with each crash in a row, up to the cap, then gives up after the bound", () => {
    const seen: string[] = [];
    let crashes = 0;
    for (let i = 0; i < 6; i++) {
      const next = afterCrash(policy, crashes, 100);
      crashes = next.crashesInARow;
      seen.push("giveUp" in next ? `give up at ${next.crashesInARow}` : `${next.restartInMs} ms`);
    }
    expect(seen).toEqual(["250 ms", "500 ms", "1000 ms", "2000 ms", "2000 ms", "give up at 6"]);
  });

  it("a controller that ran at least stableAfterMs starts a new count; one that never ran does not", () => {
    expect(afterCrash(policy, 4, 60_000)).toEqual({ restartInMs: 250, crashesInARow: 1 });
    expect(afterCrash(policy, 4, 59_999)).toEqual({ restartInMs: 2000, crashesInARow: 5 });
    expect(afterCrash(policy, 4, null)).toEqual({ restartInMs: 2000, crashesInARow: 5 });
  });

  it("a bound of 0 never restarts", () => {
    expect(afterCrash({ ...policy, maxCrashesInARow: 0 }, 0, 120_000)).toEqual({ giveUp: true, crashesInARow: 1 });
  });

  it(`${RESTARTS_ENV} sets the bound; anything but an integer 0..1000 is refused with the variable's name`, () => {
    expect(restartPolicyFrom({})).toEqual(DEFAULT_RESTART_POLICY);
    expect(restartPolicyFrom({ [RESTARTS_ENV]: "3" })).toEqual({ ...DEFAULT_RESTART_POLICY, maxCrashesInARow: 3 });
    for (const bad of ["-1", "2.5", "many", "1001"])
      expect(() => restartPolicyFrom({ [RESTARTS_ENV]: bad })).toThrow(
        `${RESTARTS_ENV}: expected an integer 0..1000 (crashes in a row restarted), got '${bad}'`,
      );
  });
});

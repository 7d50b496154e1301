import { describe, expect, it } from "vitest";
import { planStart } from "../../controller/src/cli/start-plan.ts";

describe("npm start argument plan", () => {
  it("defaults to demo models and the documented ports", () => {
    const r = planStart([], {});
    expect(r).toEqual({
      plan: {
        listen: { host: "127.0.0.1", port: 10000 },
        controller: { host: "127.0.0.1", port: 8080 },
        admin: { host: "127.0.0.1", port: 9901 },
        stable: { demo: { host: "127.0.0.1", port: 9001 } },
        canary: { demo: { host: "127.0.0.1", port: 9002 } },
        shadow: null,
        concurrency: 2,
      },
    });
  });

  it("takes flags over env vars, in both --flag value and --flag=value forms", () => {
    const r = planStart(["--stable", "http://127.0.0.1:7001", "--canary=http://127.0.0.1:7002", "--listen", "0.0.0.0:8000"], { MODELROLL_LISTEN: "127.0.0.1:1", MODELROLL_CONTROLLER: "127.0.0.1:18080" });
    if (!("plan" in r)) throw new Error(JSON.stringify(r));
    expect(r.plan.listen).toEqual({ host: "0.0.0.0", port: 8000 });
    expect(r.plan.controller).toEqual({ host: "127.0.0.1", port: 18080 });
    expect(r.plan.stable).toEqual({ url: "http://127.0.0.1:7001", hostPort: { host: "127.0.0.1", port: 7001 } });
    expect(r.plan.canary).toEqual({ url: "http://127.0.0.1:7002", hostPort: { host: "127.0.0.1", port: 7002 } });
    expect(planStart(["--shadow", "http://127.0.0.1:7003"], {})).toMatchObject({ plan: { shadow: { hostPort: { host: "127.0.0.1", port: 7003 } } } });
  });

  it.each([
    [["--stable", "http://127.0.0.1:1"], "give both --stable and --canary, or neither (to start the demo models)"],
    [["--listen"], "--listen needs a value"],
    [["--lisen", "1:2"], "unknown argument '--lisen'"],
    [["--listen", "nope"], "--listen: expected host:port, got 'nope'"],
    [["--admin", "10.0.0.1:9901"], "--admin: Envoy's admin listens on 127.0.0.1 only, got 10.0.0.1"],
    [["--stable", "https://127.0.0.1:1", "--canary", "http://127.0.0.1:2"], "--stable: only http:// upstreams are supported, got 'https://127.0.0.1:1'"],
    [["--stable", "http://models.local:1", "--canary", "http://127.0.0.1:2"], "--stable: give an IP address (STATIC cluster), got 'models.local'"],
    [["--concurrency", "0"], "--concurrency: expected an integer 1..64"],
  ])("refuses %j", (argv, error) => {
    expect(planStart(argv, {})).toEqual({ error });
  });

  it("asks for help", () => {
    expect(planStart(["--help"], {})).toEqual({ help: true });
  });
});

import { describe, expect, it } from "vitest";
import { planController } from "../../controller/src/cli/controller-plan.ts";
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
        controllerSettings: { stateFile: ".modelroll/state.db", fresh: false, tickIntervalMs: 5000 },
      },
    });
  });

  it("takes flags over env vars, in both --flag value and --flag=value forms", () => {
    const r = planStart(["--stable", "http://127.0.0.1:7001", "--canary=http://127.0.0.1:7002", "--listen", "0.0.0.0:8000"], {
      MODELROLL_LISTEN: "127.0.0.1:1",
      MODELROLL_CONTROLLER: "127.0.0.1:18080",
    });
    if (!("plan" in r)) throw new Error(JSON.stringify(r));
    expect(r.plan.listen).toEqual({ host: "0.0.0.0", port: 8000 });
    expect(r.plan.controller).toEqual({ host: "127.0.0.1", port: 18080 });
    expect(r.plan.stable).toEqual({ url: "http://127.0.0.1:7001", hostPort: { host: "127.0.0.1", port: 7001 } });
    expect(r.plan.canary).toEqual({ url: "http://127.0.0.1:7002", hostPort: { host: "127.0.0.1", port: 7002 } });
    expect(planStart(["--shadow", "http://127.0.0.1:7003"], {})).toMatchObject({ plan: { shadow: { hostPort: { host: "127.0.0.1", port: 7003 } } } });
  });

  it("takes --fresh (no value) and --tick-ms, which also reads MODELROLL_TICK_MS", () => {
    expect(planStart(["--fresh", "--tick-ms", "250"], {})).toMatchObject({ plan: { controllerSettings: { fresh: true, tickIntervalMs: 250 } } });
    expect(planStart([], { MODELROLL_TICK_MS: "1000" })).toMatchObject({ plan: { controllerSettings: { fresh: false, tickIntervalMs: 1000 } } });
    expect(planStart(["--tick-ms=750", "--state", "/tmp/x.db"], {})).toMatchObject({
      plan: { controllerSettings: { stateFile: "/tmp/x.db", tickIntervalMs: 750 } },
    });
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
    [["--tick-ms", "10"], "--tick-ms: expected an integer 50..3600000"],
    [["--fresh=yes"], "--fresh takes no value"],
  ])("refuses %j", (argv, error) => {
    expect(planStart(argv, {})).toEqual({ error });
  });

  it("asks for help", () => {
    expect(planStart(["--help"], {})).toEqual({ help: true });
  });
});

describe("npm run controller argument plan", () => {
  it("defaults, and reads tokens from the environment only", () => {
    expect(planController([], {})).toEqual({
      plan: {
        listen: { host: "127.0.0.1", port: 8080 },
        envoyAdminUrls: ["http://127.0.0.1:9901"],
        tickIntervalMs: 5000,
        stateFile: ".modelroll/state.db",
        fresh: false,
      },
    });
    const r = planController(
      [
        "--listen=0.0.0.0:9000",
        "--fresh",
        "--state",
        "/var/lib/modelroll/state.db",
        "--envoy-admin",
        "http://127.0.0.1:1, http://127.0.0.1:2",
        "--tick-ms",
        "250",
        "--prometheus",
        "http://127.0.0.1:9090",
      ],
      { MODELROLL_API_TOKEN: "a".repeat(20), MODELROLL_FILTER_TOKEN: "f".repeat(20), MODELROLL_STATE: "/ignored" },
    );
    expect(r).toEqual({
      plan: {
        listen: { host: "0.0.0.0", port: 9000 },
        envoyAdminUrls: ["http://127.0.0.1:1", "http://127.0.0.1:2"],
        tickIntervalMs: 250,
        stateFile: "/var/lib/modelroll/state.db",
        fresh: true,
        apiToken: "a".repeat(20),
        filterToken: "f".repeat(20),
        prometheusUrl: "http://127.0.0.1:9090",
      },
    });
  });

  it.each([
    [["--tick-ms", "10"], "--tick-ms: expected an integer 50..3600000"],
    [["--envoy-admin", "127.0.0.1:9901"], "--envoy-admin: expected base URLs like http://127.0.0.1:9901, got '127.0.0.1:9901'"],
    [["--prometheus", "nope"], "--prometheus: not a URL: 'nope'"],
    [["--token", "x"], "unknown argument '--token'"],
  ])("refuses %j", (argv, error) => {
    expect(planController(argv, {})).toEqual({ error });
  });
});

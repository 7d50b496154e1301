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
        demoKind: "classifier",
        probe: true,
        controllerSettings: { stateFile: ".modelroll/state.db", fresh: false, tickIntervalMs: 5000 },
      },
    });
  });

  it("starts the LLM demo with --demo llm (or MODELROLL_DEMO), and refuses it beside given models", () => {
    expect(planStart(["--demo", "llm"], {})).toMatchObject({ plan: { demoKind: "llm", stable: { demo: { port: 9001 } } } });
    expect(planStart([], { MODELROLL_DEMO: "llm" })).toMatchObject({ plan: { demoKind: "llm" } });
    expect(planStart(["--demo", "gpt"], {})).toEqual({ error: "--demo: expected classifier or llm, got 'gpt'" });
    expect(planStart(["--demo", "llm", "--stable", "http://127.0.0.1:1", "--canary", "http://127.0.0.1:2"], {})).toEqual({
      error: "--demo: the demo models start only without --stable/--canary and --models",
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

  it("takes host names for the model servers (Envoy resolves them: STRICT_DNS clusters)", () => {
    const r = planStart(["--stable", "http://localhost:9101", "--canary", "http://models.internal:9102"], {});
    expect(r).toMatchObject({
      plan: { stable: { hostPort: { host: "localhost", port: 9101 } }, canary: { hostPort: { host: "models.internal", port: 9102 } } },
    });
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
    [
      ["--stable", "http://127.0.0.1:1/v1", "--canary", "http://127.0.0.1:2"],
      "--stable: give the server's base URL without a path, got 'http://127.0.0.1:1/v1'",
    ],
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
        delivery: { mode: "long-poll" },
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
        delivery: { mode: "long-poll" },
      },
    });
  });

  it("takes the config delivery: the WasmPlugin with istiod or both, the kubeconfig from the flag or MODELROLL_KUBECONFIG", () => {
    expect(planController(["--config-delivery", "istiod", "--wasmplugin", "ml/modelroll-filter"], {})).toMatchObject({
      plan: { delivery: { mode: "istiod", wasmPlugin: { namespace: "ml", name: "modelroll-filter" } } },
    });
    expect(planController(["--config-delivery=both", "--wasmplugin=ml/f", "--kubeconfig", "/k"], { MODELROLL_KUBECONFIG: "/ignored" })).toMatchObject({
      plan: { delivery: { mode: "both", wasmPlugin: { namespace: "ml", name: "f" }, kubeconfig: "/k" } },
    });
    expect(planController([], { MODELROLL_CONFIG_DELIVERY: "istiod", MODELROLL_WASMPLUGIN: "ml/f", MODELROLL_KUBECONFIG: "/home/k" })).toMatchObject({
      plan: { delivery: { mode: "istiod", wasmPlugin: { namespace: "ml", name: "f" }, kubeconfig: "/home/k" } },
    });
  });

  it.each([
    [["--config-delivery", "ecds"], "--config-delivery: expected long-poll, istiod, both; got 'ecds'"],
    [["--config-delivery", "istiod"], "--config-delivery istiod: name the WasmPlugin to write with --wasmplugin NAMESPACE/NAME"],
    [
      ["--config-delivery", "both", "--wasmplugin", "modelroll-filter"],
      "--wasmplugin: expected NAMESPACE/NAME (lowercase DNS names), e.g. ml/modelroll-filter; got 'modelroll-filter'",
    ],
    [["--wasmplugin", "ml/f"], "--wasmplugin: only with --config-delivery istiod or both"],
    [["--kubeconfig", "/k"], "--kubeconfig needs --state kube or --config-delivery istiod|both"],
  ])("refuses the delivery %j", (argv, error) => {
    expect(planController(argv, {})).toEqual({ error });
  });

  it.each([
    [["--tick-ms", "10"], "--tick-ms: expected an integer 50..3600000"],
    [["--envoy-admin", "127.0.0.1:9901"], "--envoy-admin: expected base URLs like http://127.0.0.1:9901, got '127.0.0.1:9901'"],
    [["--prometheus", "nope"], "--prometheus: not a URL: 'nope'"],
    [["--token", "x"], "unknown argument '--token'"],
  ])("refuses %j", (argv, error) => {
    expect(planController(argv, {})).toEqual({ error });
  });

  it("takes controller-wide notification targets from MODELROLL_NOTIFY_TARGETS only, and --public-url", () => {
    const slack = "https://hooks.slack.com/services/T1/B2/SECRETSECRET";
    const r = planController(["--public-url", "https://modelroll.example"], { MODELROLL_NOTIFY_TARGETS: `slack=${slack}` });
    expect(r).toMatchObject({
      plan: {
        publicUrl: "https://modelroll.example",
        notifications: { targets: [{ name: "slack-0", format: "slack", url: slack, events: null, timeoutMs: 5000 }] },
      },
    });
    expect(planController([], { MODELROLL_PUBLIC_URL: "http://10.0.0.5:8080/modelroll" })).toMatchObject({
      plan: { publicUrl: "http://10.0.0.5:8080/modelroll" },
    });
    // There is no flag for them: argv is visible to every user of the machine.
    expect(planController(["--notify-targets", slack], {})).toEqual({ error: "unknown argument '--notify-targets'" });
    const bad = planController([], { MODELROLL_NOTIFY_TARGETS: `pager=${slack}` });
    expect(bad).toEqual({ error: expect.stringMatching(/^MODELROLL_NOTIFY_TARGETS: \/0\/format /) });
    expect(JSON.stringify(bad)).not.toContain("SECRET");
    expect(planController(["--public-url", "modelroll.example"], {})).toEqual({
      error: "--public-url: expected an http:// or https:// base URL, got 'modelroll.example'",
    });
  });
});

describe("the metric source and the models file in both plans", () => {
  it("--metrics prometheus with --prometheus (or the environment), and its freshness bound", () => {
    expect(planController(["--metrics", "prometheus", "--prometheus", "http://127.0.0.1:9090"], {})).toMatchObject({
      plan: { metrics: "prometheus", prometheusUrl: "http://127.0.0.1:9090" },
    });
    expect(
      planStart([], { MODELROLL_METRICS: "prometheus", MODELROLL_PROMETHEUS_URL: "http://127.0.0.1:9090", MODELROLL_PROMETHEUS_MAX_LAG_MS: "30000" }),
    ).toMatchObject({
      plan: { controllerSettings: { metrics: "prometheus", prometheusUrl: "http://127.0.0.1:9090", prometheusMaxLagMs: 30000 } },
    });
    expect(planController(["--metrics=admin"], {})).toMatchObject({ plan: { metrics: "admin" } });
  });

  it("--models FILE, alone or with the other flags", () => {
    expect(planStart(["--models", "models.yaml", "--listen", "127.0.0.1:1"], {})).toMatchObject({ plan: { modelsFile: "models.yaml", listen: { port: 1 } } });
    expect(planStart([], { MODELROLL_MODELS: "/etc/models.yaml" })).toMatchObject({ plan: { modelsFile: "/etc/models.yaml" } });
  });

  it.each([
    [["--metrics", "statsd"], "--metrics: expected admin or prometheus, got 'statsd'"],
    [["--metrics", "prometheus"], "--metrics prometheus: give Prometheus' URL with --prometheus (or MODELROLL_PROMETHEUS_URL)"],
    [["--prometheus-max-lag-ms", "5000"], "--prometheus-max-lag-ms: only applies with --metrics prometheus"],
    [
      ["--metrics", "prometheus", "--prometheus", "http://127.0.0.1:1", "--prometheus-max-lag-ms", "10"],
      "--prometheus-max-lag-ms: expected an integer 1000..3600000",
    ],
    [
      ["--models", "m.yaml", "--stable", "http://127.0.0.1:1", "--canary", "http://127.0.0.1:2"],
      "--models: give the models in the file, or one pair with --stable/--canary, not both",
    ],
  ])("refuses %j", (argv, error) => {
    expect(planStart(argv, {})).toEqual({ error });
  });
});

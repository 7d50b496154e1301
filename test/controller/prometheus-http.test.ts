// The Prometheus instant-query client against a tiny local server serving canned answers.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrometheusHttpSource, type PromQLSource } from "../../controller/src/metrics/prometheus-http.ts";
import { readPromQLGates } from "../../controller/src/release/promql-gates.ts";
import { specFrom } from "../engine/drive.ts";

const vector = (...values: string[]) => ({
  status: "success",
  data: { resultType: "vector", result: values.map((v, i) => ({ metric: { pod: `p${i}` }, value: [1767225600, v] })) },
});

/** query -> [HTTP status, body (object -> JSON, string as is)], or "hang" to never answer. */
const CANNED: Record<string, [number, unknown] | "hang"> = {
  "sum(oom)": [200, vector("3")],
  "sum(none)": [200, vector()],
  "scalar(1)": [200, { status: "success", data: { resultType: "scalar", result: [1767225600, "1.5"] } }],
  oom_by_pod: [200, vector("1", "2")],
  "bad(": [400, { status: "error", errorType: "bad_data", error: 'parse error: unexpected "("' }],
  html: [502, "<html>bad gateway</html>"],
  ratio: [200, vector("NaN")],
  matrix: [200, { status: "success", data: { resultType: "matrix", result: [] } }],
  slow: "hang",
};

let server: Server;
let baseUrl: string;
const seen: URL[] = [];

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    seen.push(url);
    if (url.pathname !== "/prom/api/v1/query") {
      res.writeHead(404).end();
      return;
    }
    const canned = CANNED[url.searchParams.get("query") ?? ""];
    if (canned === "hang") return;
    const [status, body] = canned ?? [200, vector("0")];
    res.writeHead(status, { "content-type": typeof body === "string" ? "text/html" : "application/json" });
    res.end(typeof body === "string" ? body : JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/prom/`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe("PrometheusHttpSource", () => {
  const at = Date.UTC(2026, 0, 1);

  it("reads one number from a one-series vector, asking at the given time", async () => {
    const source = new PrometheusHttpSource({ baseUrl });
    expect(await source.query("sum(oom)", at)).toEqual({ status: "measured", value: 3, sources: [{ url: baseUrl.replace(/\/$/, ""), ok: true }] });
    const asked = seen.at(-1)!;
    expect(asked.pathname).toBe("/prom/api/v1/query");
    expect(asked.searchParams.get("query")).toBe("sum(oom)");
    expect(asked.searchParams.get("time")).toBe("1767225600.000");
  });

  it.each([
    ["sum(none)", { status: "measured", value: null }],
    ["scalar(1)", { status: "measured", value: 1.5 }],
    [
      "oom_by_pod",
      { status: "unmeasurable", error: expect.stringMatching(/query returned 2 series; a gate needs one number \(aggregate with sum\(\) or max\(\)\)/) },
    ],
    ["bad(", { status: "unmeasurable", error: expect.stringMatching(/: HTTP 400: parse error: unexpected "\("$/) }],
    ["html", { status: "unmeasurable", error: expect.stringMatching(/HTTP 502, not JSON: <html>bad gateway/) }],
    // 0/0: passed on as NaN, which the gate reads as Inconclusive (gates.test.ts).
    ["ratio", { status: "measured", value: NaN }],
    ["matrix", { status: "unmeasurable", error: expect.stringMatching(/query returned a matrix result; a gate needs a scalar or a one-series vector/) }],
  ])("%s", async (query, expected) => {
    expect(await new PrometheusHttpSource({ baseUrl }).query(query, at)).toMatchObject(expected);
  });

  it("gives up after its timeout", async () => {
    const reading = await new PrometheusHttpSource({ baseUrl, timeoutMs: 200 }).query("slow", at);
    expect(reading).toMatchObject({
      status: "unmeasurable",
      error: expect.stringMatching(/^prometheus http:\/\/127\.0\.0\.1:\d+\/prom: no answer within 200 ms$/),
    });
  });

  it("is unmeasurable when nothing listens", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const reading = await new PrometheusHttpSource({ baseUrl: `http://127.0.0.1:${port}` }).query("up", at);
    expect(reading).toMatchObject({ status: "unmeasurable", sources: [{ ok: false }] });
  });
});

describe("readPromQLGates", () => {
  it("asks every PromQL gate's query and keys the readings by gate name; a throwing source is unmeasurable", async () => {
    const spec = specFrom({
      promotion_gates: {
        schema_validation_pass_rate: { minimum: 0.99 },
        gpu_oom_events: { maximum: 0, query: "sum(oom)" },
        pod_restarts: { query: "sum(none)", maximum: 2, empty_result: "zero" },
      },
    });
    const readings = await readPromQLGates(spec, new PrometheusHttpSource({ baseUrl }), Date.UTC(2026, 0, 1));
    expect(Object.keys(readings).sort()).toEqual(["gpu_oom_events", "pod_restarts"]);
    expect(readings.gpu_oom_events).toMatchObject({ status: "measured", value: 3 });
    expect(readings.pod_restarts).toMatchObject({ status: "measured", value: null });

    const throwing: PromQLSource = {
      query: async () => {
        throw new Error("boom");
      },
    };
    expect((await readPromQLGates(spec, throwing, 0)).gpu_oom_events).toEqual({ status: "unmeasurable", error: "boom", sources: [] });
  });
});

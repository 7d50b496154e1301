// Event streams share one budget (--max-event-streams), and the read-only filter token cannot take the slots
// kept for the API token: the people operating a release can always open their dashboard. Against the real
// controller process with both tokens set (needs `npm run build`).
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reservedFor } from "../../controller/src/events/slots.ts";
import { startRealController, type RealController } from "./real-controller.ts";

const API = "api-token-0123456789abcdef";
const FILTER = "filter-token-0123456789abcdef";
const MAX = 8;

let controller: RealController;
beforeAll(async () => {
  controller = await startRealController(["--max-event-streams", String(MAX)], { MODELROLL_API_TOKEN: API, MODELROLL_FILTER_TOKEN: FILTER });
  const created = await fetch(`${controller.url}/v1/rollouts`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${API}` },
    body: JSON.stringify({ name: "fraud-model", match: { pathPrefix: "/v1/predict" }, stickyKey: { header: "x-user-id" } }),
  });
  expect(created.status).toBe(201);
}, 60_000);
afterAll(async () => {
  await controller?.stop();
});

interface Opened {
  status: number;
  error?: string;
  close: () => void;
}

/** Opens a stream; a 200 is kept open (its first bytes read) until close(). */
async function open(token: string, path: string): Promise<Opened> {
  const abort = new AbortController();
  const response = await fetch(`${controller.url}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: abort.signal });
  if (response.status !== 200) return { status: response.status, error: ((await response.json()) as { error: string }).error, close: () => {} };
  const reader = response.body!.getReader();
  await reader.read();
  return { status: 200, close: () => abort.abort() };
}

describe("event stream slots", () => {
  it(`readers get ${MAX - reservedFor(MAX)} of ${MAX} streams across both routes; the API token gets the rest; a closed stream frees its slot`, async () => {
    const reserved = reservedFor(MAX);
    expect(reserved).toBe(1);
    const readers: Opened[] = [];
    for (let i = 0; i < MAX - reserved; i++) {
      const stream = await open(FILTER, i % 2 === 0 ? "/v1/events" : "/v1/rollouts/fraud-model/events");
      expect(stream.status, stream.error).toBe(200);
      readers.push(stream);
    }
    // Repeated, on both routes: the filter token is refused, naming the limit and the reserve.
    for (const path of ["/v1/events", "/v1/rollouts/fraud-model/events", "/v1/events"]) {
      const refused = await open(FILTER, path);
      expect(refused.status).toBe(503);
      expect(refused.error).toContain(`too many open event streams for the read-only token (${MAX - reserved}; ${reserved} are kept for the API token)`);
    }
    const operator = await open(API, "/v1/events");
    expect(operator.status, operator.error).toBe(200);
    const full = await open(API, "/v1/rollouts/fraud-model/events");
    expect(full.status).toBe(503);
    expect(full.error).toContain(`too many open event streams (${MAX})`);

    // A reader leaves: its slot is free again (the server sees the close asynchronously; bounded retries).
    readers.shift()?.close();
    let again: Opened = { status: 0, close: () => {} };
    for (let i = 0; i < 100 && again.status !== 200; i++) {
      again = await open(FILTER, "/v1/events");
      if (again.status !== 200) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(again.status, again.error).toBe(200);
    for (const stream of [...readers, operator, again]) stream.close();
    expect(controller.alive()).toBe(true);
  });
});

describe("--max-event-streams values", () => {
  const entry = fileURLToPath(new URL("../../controller/dist/cli/controller.js", import.meta.url));
  for (const value of ["0", "-1", "abc", "1e3", "100001", "", "8.5"]) {
    it(`'${value}' is refused with exit 2 and the range`, () => {
      const run = spawnSync(process.execPath, [entry, "--listen", "127.0.0.1:1", `--max-event-streams=${value}`], { encoding: "utf8", timeout: 30_000 });
      expect(run.status).toBe(2);
      expect(run.stderr).toContain("--max-event-streams: expected an integer 1..100000");
    });
  }
});

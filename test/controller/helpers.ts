import type { FastifyInstance } from "fastify";
import { afterEach } from "vitest";
import { buildApp, type BuildAppOptions } from "../../controller/src/app.ts";

export const EPOCH = "0123456789abcdef";

export function spec(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: "fraud-model",
    match: { pathPrefix: "/v1/predict" },
    stickyKey: { header: "x-user-id" },
    ...overrides,
  };
}

const open: FastifyInstance[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((app) => app.close()));
});

/** An app closed after the test. */
export async function testApp(options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const app = await buildApp({ epoch: EPOCH, ...options });
  open.push(app);
  return app;
}

export async function createRollout(app: FastifyInstance, body: Record<string, unknown> = spec()) {
  const response = await app.inject({ method: "POST", url: "/v1/rollouts", payload: body });
  if (response.statusCode !== 201) throw new Error(`create failed: ${response.statusCode} ${response.body}`);
  return response.json();
}

export async function metricValue(app: FastifyInstance, name: string): Promise<number> {
  const text = (await app.inject({ url: "/metrics" })).body;
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  if (!line) throw new Error(`metric ${name} not in /metrics`);
  return Number(line.split(" ").at(-1));
}

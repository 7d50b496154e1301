// Benchmark (not a test): what holding a request's headers until its body's `model` is read costs (filter/
// model-route.ts). One Envoy (2 workers) with the filter in front of a fast chat-completions server; four
// rollouts at 50%, for 1 KB and 32 KB request bodies: by path only (headers pass at once), by the body's model,
// by the body's model with the canary's model rewritten (which also reads every answer's own model), and by the
// body's model with the answers' model read but nothing rewritten (the part of the rewrite's cost that is reading).
// One keep-alive connection, requests one at a time, the four alternating within each round, so drift on the
// machine hits all alike; medians of the rounds' p50s.
//   npm run bench:model-route     (BENCH_REQUESTS per point and round, default 1500; BENCH_REPEATS, default 3)
import { Agent, request } from "node:http";
import { api, waitFor } from "../test/e2e/harness.ts";
import { startSamplingServer, startStack } from "../test/e2e/llm-route-harness.ts";
import { envoyVersion, median } from "./lib.ts";

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 1500);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);

const upstream = await startSamplingServer(1);
const stack = await startStack({ stable: upstream, canary: upstream });
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function post(path: string, body: string, user: string): Promise<{ status: number; variant: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${stack.dataUrl}${path}`,
      { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), "x-user-id": user } },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0, variant: res.headers["x-rollout-variant"] as string | undefined }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function p50us(path: string, body: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const t = process.hrtime.bigint();
    const r = await post(path, body, `user-${i}`);
    times.push(Number(process.hrtime.bigint() - t) / 1000);
    if (r.status !== 200 || r.variant === undefined) throw new Error(`${path}: answered ${r.status}, variant ${r.variant}`);
  }
  return median(times);
}

try {
  const ctl = stack.controller.url;
  const base = { stickyKey: { header: "x-user-id" }, canaryPercent: 50 };
  for (const spec of [
    { name: "by-path", match: { pathPrefix: "/plain/v1/chat/completions" } },
    { name: "by-model", match: { pathPrefix: "/v1/chat/completions", model: "fraud-llm" } },
    { name: "rewrite", match: { pathPrefix: "/v1/chat/completions", model: "fraud-llm-r" }, modelRewrite: { canary: "fraud-llm-r-lora" } },
    // What a rewrite implies besides the rewrite: every answer's own model is read (the body parsed) and checked.
    {
      name: "by-model-id",
      match: { pathPrefix: "/v1/chat/completions", model: "fraud-llm-id" },
      models: { stable: "fraud-llm-id", canary: "fraud-llm-id-v2", versionField: "model" },
    },
  ]) {
    const r = await api(ctl, "POST", "/v1/rollouts", { ...base, ...spec, match: { ...spec.match, ...(spec.match.model ? { maxBodyBytes: 65536 } : {}) } });
    if (r.status !== 201) throw new Error(JSON.stringify(r.json));
  }
  const bodyOf = (model: string, kb: number) => JSON.stringify({ model, messages: [{ role: "user", content: "x".repeat(kb * 1024 - 80) }] });
  await waitFor(
    "the rollouts in the filter",
    async () => (await post("/v1/chat/completions", bodyOf("fraud-llm-r", 1), "probe")).variant !== undefined,
    15_000,
    50,
  );
  console.log(`\nmodelroll model-route bench (${REPEATS} rounds x ${REQUESTS} requests per point, one at a time; ${envoyVersion()}, 2 workers)`);
  for (const kb of [1, 32]) {
    const points = [
      { name: "by path", path: "/plain/v1/chat/completions", body: bodyOf("fraud-llm", kb) },
      { name: "by model", path: "/v1/chat/completions", body: bodyOf("fraud-llm", kb) },
      { name: "by model + rewrite", path: "/v1/chat/completions", body: bodyOf("fraud-llm-r", kb) },
      { name: "by model + answers' model read", path: "/v1/chat/completions", body: bodyOf("fraud-llm-id", kb) },
    ];
    for (const p of points) await p50us(p.path, p.body); // warm-up
    const runs = points.map(() => [] as number[]);
    for (let round = 0; round < REPEATS; round++) {
      const order = round % 2 === 0 ? [0, 1, 2, 3] : [3, 2, 1, 0];
      for (const k of order) {
        const point = points[k];
        if (point) runs[k]?.push(await p50us(point.path, point.body));
      }
    }
    const p50s = runs.map(median);
    const [plain = 0, model = 0, rewrite = 0, read = 0] = p50s;
    console.log(
      `${kb} KB request: p50 by path ${plain.toFixed(0)} us, by model ${model.toFixed(0)} us (+${(model - plain).toFixed(0)} us, ratio ${(model / plain).toFixed(3)}), by model + rewrite ${rewrite.toFixed(0)} us (+${(rewrite - plain).toFixed(0)} us, ratio ${(rewrite / plain).toFixed(3)}), by model + answers' model read ${read.toFixed(0)} us (+${(read - plain).toFixed(0)} us, ratio ${(read / plain).toFixed(3)})`,
    );
  }
} finally {
  agent.destroy();
  await stack.stop();
  await upstream.close();
}
process.exit(0);

// Benchmark (not a test): what reading streamed LLM answers costs on the data path.
//  1. Time to first token through Envoy with the filter reading the stream vs Envoy routing natively (no filter),
//     both in front of one demo LLM server (its own process, first token at once), in the same run, rounds
//     alternating; the client is the `openai` npm package's.
//  2. Microseconds per KB of SSE: one Envoy (1 worker) with the filter in front of fixed SSE answers of 1, 16 and
//     256 KB; a rollout that only routes vs one that reads the stream (output analysis), same bodies (like
//     bench/validation.ts, against routing-only in the same run). Timed with a keep-alive Node client, p50 of
//     whole answers.
//   npm run bench:llm        (BENCH_REQUESTS per point and round, default 400; BENCH_REPEATS rounds, default 3)
import { request, Agent } from "node:http";
import OpenAI from "openai";
import { startEnvoy } from "../controller/src/envoy/process.ts";
import { freePort } from "../controller/src/net.ts";
import { startLlmProcess, startStack } from "../test/e2e/llm-harness.ts";
import { api, waitFor } from "../test/e2e/harness.ts";
import { startFixedAnswerStack } from "./fixed-stack.ts";
import { envoyVersion, median, percentile } from "./lib.ts";

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 400);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const SIZES_KB = [1, 16, 256];

/** Envoy routing to one upstream with no filter at all: the native baseline. */
function nativeProxyYaml(adminPort: number, listenPort: number, upstreamPort: number): string {
  return `admin: { address: { socket_address: { address: 127.0.0.1, port_value: ${adminPort} } } }
static_resources:
  listeners:
  - name: native
    address: { socket_address: { address: 127.0.0.1, port_value: ${listenPort} } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: native
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{ match: { prefix: "/" }, route: { cluster: model, timeout: 30s } }]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
  clusters:
  - name: model
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: model
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${upstreamPort} } } } }] }]
`;
}

/** Microseconds from the request to the first content chunk the openai client yields, for `n` streams one at a time. */
async function ttfts(baseURL: string, n: number): Promise<number[]> {
  const client = new OpenAI({ apiKey: "x", baseURL, maxRetries: 0 });
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const began = process.hrtime.bigint();
    let first = 0;
    const stream = await client.chat.completions.create(
      { model: "demo-llm", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: `q${i}` }] },
      { headers: { "x-user-id": `u${i}` } },
    );
    for await (const chunk of stream) {
      if (first === 0 && chunk.choices[0]?.delta.content) first = Number(process.hrtime.bigint() - began) / 1000;
    }
    out.push(first);
  }
  return out;
}

/** A streamed answer of about `kb` KB: OpenAI chunks of one short token each, finish, usage, [DONE]. */
function sseAnswer(kb: number): string {
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
    `data: ${JSON.stringify({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: "demo-llm", choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
  let body = chunk({ role: "assistant", content: "" });
  let tokens = 0;
  while (body.length < kb * 1024) {
    body += chunk({ content: ` word${tokens % 97}` });
    tokens++;
  }
  body += chunk({}, "stop");
  body += `data: ${JSON.stringify({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: "demo-llm", choices: [], usage: { prompt_tokens: 9, completion_tokens: tokens, total_tokens: 9 + tokens } })}\n\n`;
  return `${body}data: [DONE]\n\n`;
}

/** Microseconds for whole answers, `n` requests over 2 keep-alive connections. */
async function wholeAnswers(url: string, n: number, agent: Agent): Promise<number[]> {
  const out: number[] = [];
  let next = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const i = next++;
      const began = process.hrtime.bigint();
      const req = request(url, { method: "POST", agent, headers: { "content-type": "application/json", "x-user-id": `u${i}` } }, (res) => {
        res.on("data", () => undefined);
        res.on("end", () => {
          out.push(Number(process.hrtime.bigint() - began) / 1000);
          resolve();
        });
      });
      req.on("error", reject);
      req.end("{}");
    });
  const worker = async () => {
    while (next < n) await one();
  };
  await Promise.all([worker(), worker()]);
  return out;
}

console.log(`\nmodelroll LLM bench (${envoyVersion()}; ${REPEATS} rounds x ${REQUESTS} requests per point, medians)`);

// 1. TTFT: filter vs native routing, same model server.
{
  const model = await startLlmProcess("v1", { firstTokenMs: 0, tokenMs: 0, answerTokens: 8 });
  const stack = await startStack({ servers: { stable: model, canary: model } });
  const [nativeAdmin, nativeListen] = [await freePort(), await freePort()];
  const native = await startEnvoy({ bootstrapYaml: nativeProxyYaml(nativeAdmin, nativeListen, model.port), adminPort: nativeAdmin, concurrency: 2 });
  try {
    const created = await api(stack.controller.url, "POST", "/v1/rollouts", {
      name: "chat",
      match: { pathPrefix: "/chat" },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 50,
      output: {},
    });
    if (created.status !== 201) throw new Error(`bench: rollout refused: ${JSON.stringify(created.json)}`);
    // The same filter routing only (no output section: streams pass unread), to tell its routing from its reading.
    const routing = await api(stack.controller.url, "POST", "/v1/rollouts", {
      name: "route",
      match: { pathPrefix: "/route" },
      stickyKey: { header: "x-user-id" },
      canaryPercent: 50,
    });
    if (routing.status !== 201) throw new Error(`bench: rollout refused: ${JSON.stringify(routing.json)}`);
    await waitFor(
      "the filter to read streams",
      async () => {
        await ttfts(`${stack.dataUrl}/chat/v1`, 5);
        const stats = (await api(stack.controller.url, "GET", "/v1/rollouts/chat/stats")).json;
        return (stats.variants.stable.output?.streams?.count ?? 0) > 0;
      },
      20_000,
      200,
    );
    const targets = {
      native: `http://127.0.0.1:${nativeListen}/chat/v1`,
      routing: `${stack.dataUrl}/route/v1`,
      filter: `${stack.dataUrl}/chat/v1`,
      direct: `${model.url}/chat/v1`,
    };
    for (const url of Object.values(targets)) await ttfts(url, 50);
    const runs: Record<string, number[]> = { native: [], routing: [], filter: [], direct: [] };
    for (let r = 0; r < REPEATS; r++) {
      const order = r % 2 === 0 ? (["native", "routing", "filter", "direct"] as const) : (["filter", "routing", "native", "direct"] as const);
      for (const k of order) runs[k]?.push(...(await ttfts(targets[k], REQUESTS)));
    }
    const line = (k: string) => `${k} p50 ${median(runs[k] ?? []).toFixed(0)} us, p95 ${percentile(runs[k] ?? [], 0.95).toFixed(0)} us`;
    const added = median(runs.filter ?? []) - median(runs.native ?? []);
    console.log(
      `TTFT (openai client, first content chunk; model answers at once): ${line("direct")}; ${line("native")}; ${line("routing")} (filter, routing only); ${line("filter")} (filter reading the stream)`,
    );
    console.log(`  reading the stream adds ${(median(runs.filter ?? []) - median(runs.routing ?? [])).toFixed(0)} us over the same filter routing only`);
    console.log(
      `  the filter adds ${added.toFixed(0)} us to the median TTFT over native Envoy routing (${(median(runs.filter ?? []) / median(runs.native ?? [])).toFixed(3)}x)`,
    );
  } finally {
    await native.stop();
    await stack.stop();
  }
}

// 2. us per KB of SSE: routing-only vs reading the stream, same bodies.
{
  const bodies = Object.fromEntries(SIZES_KB.map((kb) => [kb, sseAnswer(kb)]));
  const headers = { "content-type": "text/event-stream" };
  const stack = await startFixedAnswerStack({
    routes: SIZES_KB.flatMap((kb) => [
      { prefix: `/plain${kb}/`, body: bodies[kb] ?? "", headers },
      { prefix: `/sse${kb}/`, body: bodies[kb] ?? "", headers },
    ]),
    rollouts: SIZES_KB.flatMap((kb) => [
      { name: `plain${kb}`, match: { pathPrefix: `/plain${kb}/` }, stickyKey: { header: "x-user-id" } },
      { name: `sse${kb}`, match: { pathPrefix: `/sse${kb}/` }, stickyKey: { header: "x-user-id" }, output: { maxBodyBytes: 1024 * 1024 } },
    ]),
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  try {
    for (const kb of SIZES_KB) {
      const size = Buffer.byteLength(bodies[kb] ?? "") / 1024;
      const urls = { plain: `${stack.base}/plain${kb}/p`, sse: `${stack.base}/sse${kb}/p` };
      await wholeAnswers(urls.plain, 100, agent);
      await wholeAnswers(urls.sse, 100, agent);
      const runs = { plain: [] as number[], sse: [] as number[] };
      for (let r = 0; r < REPEATS; r++) {
        for (const k of r % 2 === 0 ? (["plain", "sse"] as const) : (["sse", "plain"] as const))
          runs[k].push(median(await wholeAnswers(urls[k], REQUESTS, agent)));
      }
      const added = median(runs.sse) - median(runs.plain);
      console.log(
        `${kb} KB SSE answer (${size.toFixed(1)} KB, ${(bodies[kb] ?? "").split("\n\n").length - 1} events): p50 ${median(runs.plain).toFixed(0)} -> ${median(runs.sse).toFixed(0)} us, added ${added.toFixed(0)} us = ${(added / size).toFixed(2)} us per KB`,
      );
    }
    const stats = (await api(stack.controllerUrl, "GET", "/v1/rollouts/sse16/stats")).json.variants.stable.output?.streams;
    console.log(`  (the filter read them: sse16 streams ${stats?.count}, cut off ${stats?.cutOffRate}, finish ${JSON.stringify(stats?.finish)})`);
  } finally {
    agent.destroy();
    await stack.stop();
  }
}

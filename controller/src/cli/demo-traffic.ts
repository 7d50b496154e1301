// `npm start -- --demo-traffic RATE`: the demo's users, from modelroll traffic's generator, until the stack stops
// (at a bounded rate: start-plan.ts caps it). Every 30 s one line of what each variant answered so far.
import { setTimeout as sleep } from "node:timers/promises";
import { progressLine, runTraffic, TRAFFIC_DEFAULTS } from "./modelroll/traffic.ts";

/** The LLM demo's request: a streamed chat completion with usage in its last chunk. */
export const DEMO_CHAT_BODY =
  '{"model":"demo-llm","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Is this payment fraud?"}]}';

export function startDemoTraffic(
  rate: number,
  dataUrl: string,
  path: string,
  shutdown: { onStop(step: () => Promise<void>): void },
  /** The request body (default: the classifier's). */
  body?: string,
): void {
  const stop = new AbortController();
  console.log(
    `demo traffic: ${rate} requests/s to ${dataUrl}${path} from ${TRAFFIC_DEFAULTS.users} users (${TRAFFIC_DEFAULTS.userHeader}); every 30 s, what each variant answered since start`,
  );
  const done = runTraffic(
    { ...TRAFFIC_DEFAULTS, url: dataUrl, path, rate, durationMs: null, ...(body !== undefined ? { body } : {}) },
    {
      fetch: globalThis.fetch,
      now: Date.now,
      sleep: (ms, signal) => sleep(ms, undefined, { signal }),
      signal: stop.signal,
      onProgress: (summary) => process.stdout.write(`demo traffic ${progressLine(summary).trimStart()}`),
      progressEveryMs: 30_000,
    },
  );
  // Registered after Envoy's stop, so run before it: the traffic ends first and no request meets a closing proxy.
  shutdown.onStop(async () => {
    stop.abort();
    await done;
  });
}

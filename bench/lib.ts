// What the bench scripts share: wrk runs and parsing, and small statistics. Benchmarks print ratios
// against a baseline measured in the same run; nothing here asserts.
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { envoyBinary } from "../controller/src/paths.ts";

/** The value, or a stop with what was missing (a bench that cannot measure says why rather than printing NaN). */
export function present<T>(value: T | null | undefined, what: string): T {
  if (value === null || value === undefined) throw new Error(`bench: no ${what}`);
  return value;
}

export function requireWrk(): void {
  if (spawnSync("wrk", ["--version"]).error) {
    console.error("bench: wrk is not installed (Debian/Ubuntu: apt-get install wrk)");
    process.exit(2);
  }
}

export function envoyVersion(): string {
  const out = spawnSync(envoyBinary(), ["--version"], { encoding: "utf8" }).stdout ?? "";
  return `Envoy ${/\/(\d+\.\d+\.\d+)\//.exec(out)?.[1] ?? "unknown"}`;
}

/** A wrk Lua script: POSTs with a distinct x-user-id per request, so sticky hashing sees many users. */
export function keysScript(body = '{"features":[1,2,3]}'): string {
  const path = join(mkdtempSync(join(tmpdir(), "modelroll-bench-")), "keys.lua");
  writeFileSync(
    path,
    `counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", nil, { ["x-user-id"] = "user-" .. counter, ["content-type"] = "application/json" }, '${body}')
end
`,
  );
  return path;
}

export interface WrkResult {
  rps: number;
  p50us: number;
  p99us: number;
  errors: number;
}

function toMicros(text: string | undefined): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text ?? "");
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === "us" ? v : m[2] === "ms" ? v * 1000 : v * 1e6;
}

/** One wrk run. Asynchronous on purpose: a controller in this process must keep answering long-polls. */
export async function wrk(url: string, connections: number, seconds: number, script: string): Promise<WrkResult> {
  const r = await promisify(execFile)("wrk", ["-t", "1", "-c", String(connections), "-d", `${seconds}s`, "--latency", "-s", script, url], {
    encoding: "utf8",
    maxBuffer: 1 << 20,
  });
  const out = r.stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (sockErr ? sockErr.slice(1).reduce((s, x) => s + Number(x), 0) : 0);
  if (!Number.isFinite(rps)) throw new Error(`wrk output not understood:\n${out}\n${r.stderr}`);
  return { rps, p50us: toMicros(/\n\s+50%\s+(\S+)/.exec(out)?.[1]), p99us: toMicros(/\n\s+99%\s+(\S+)/.exec(out)?.[1]), errors };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export function percentile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** Bootstrap of an upstream Envoy answering fixed bodies by path prefix: a fast, steady stand-in for models. */
export function fixedUpstreamYaml(
  adminPort: number,
  listeners: Array<{ name: string; port: number; routes: Array<{ prefix: string; body: string; headers?: Record<string, string> }> }>,
): string {
  const yamlString = (s: string) => JSON.stringify(s);
  const listenerYaml = listeners
    .map(
      (l) => `
  - name: ${yamlString(l.name)}
    address: { socket_address: { address: 127.0.0.1, port_value: ${l.port} } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ${yamlString(l.name)}
          route_config:
            max_direct_response_body_size_bytes: 1048576
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:${l.routes
                .map(
                  (r) => `
              - match: { prefix: ${yamlString(r.prefix)} }
                direct_response: { status: 200, body: { inline_string: ${yamlString(r.body)} } }
                response_headers_to_add: [${Object.entries({ "content-type": "application/json", ...(r.headers ?? {}) })
                  .map(([key, value]) => `{ header: { key: ${yamlString(key)}, value: ${yamlString(value)} } }`)
                  .join(", ")}]`,
                )
                .join("")}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }`,
    )
    .join("");
  return `admin: { address: { socket_address: { address: 127.0.0.1, port_value: ${adminPort} } } }
static_resources:
  listeners:${listenerYaml}
`;
}

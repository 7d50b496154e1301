// The real programs the mesh tests drive: a Docker Distribution registry (Debian's docker-registry), oras, and
// tools/istio-wasm (istio-agent's Wasm code). Each is installed by the test set-up on first need (scripts/test-tools.mjs);
// a missing one fails the test with how to install it.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnManaged } from "../../controller/src/child-process.ts";
import { freePort } from "../../controller/src/net.ts";
import { repoRoot } from "../../controller/src/paths.ts";
import { orasBinary } from "../../scripts/build-image.mjs";

export { orasBinary };

export function registryBinary(): string {
  const bin = process.env.REGISTRY_BIN ?? "/usr/bin/docker-registry";
  if (!existsSync(bin))
    throw new Error(
      `the OCI registry is not installed at ${bin}: run 'node scripts/test-tools.mjs registry' (it installs Debian's docker-registry package) or set REGISTRY_BIN`,
    );
  return bin;
}

export function istioWasmBinary(): string {
  const bin = process.env.ISTIO_WASM_BIN ?? join(repoRoot, ".tools", "istio-wasm");
  if (!existsSync(bin))
    throw new Error(`${bin} is missing: run 'node scripts/test-tools.mjs istio-wasm' (it builds tools/istio-wasm with Go) or set ISTIO_WASM_BIN`);
  return bin;
}

export interface Registry {
  /** host:port on 127.0.0.1 */
  host: string;
  log(): string;
  stop(): Promise<void>;
}

/** A registry on a free loopback port, storing blobs in a fresh temp dir, no auth, plain HTTP. */
export async function startRegistry(): Promise<Registry> {
  const dir = mkdtempSync(join(tmpdir(), "modelroll-registry-"));
  const port = await freePort();
  const config = join(dir, "config.yml");
  writeFileSync(
    config,
    [
      "version: 0.1",
      "log: { level: warn }",
      `storage: { filesystem: { rootdirectory: ${JSON.stringify(join(dir, "data"))} } }`,
      `http: { addr: "127.0.0.1:${port}" }`,
      "",
    ].join("\n"),
  );
  const managed = spawnManaged(registryBinary(), ["serve", config], { workDir: dir, maxLogChars: 200_000 });
  const host = `127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const exited = managed.exited();
    if (exited !== null) throw new Error(`the registry exited during start-up (${exited}):\n${managed.log().slice(-3000)}`);
    try {
      const res = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) return { host, log: managed.log, stop: managed.stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await managed.stop();
  throw new Error(`the registry did not answer on ${host} within 15 s:\n${managed.log().slice(-3000)}`);
}

/** Runs a tool to its end without blocking the event loop (a test may serve what the tool fetches). */
export function runTool(bin: string, args: string[], input?: string): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`${bin} ${args.join(" ")}: ${error.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ status: code ?? (signal ? -1 : 0), stdout, stderr });
    });
    child.stdin.end(input ?? "");
  });
}

/** The last line of a tool's output (istio-wasm logs like istio-agent before it prints its answer). */
export const lastLine = (text: string) => text.trimEnd().split("\n").pop() ?? "";

/** Copies the built image from build/image/oci into the registry as modelroll/filter:<tag>; returns its reference. */
export async function pushImage(registry: Registry, tag: string): Promise<string> {
  const ref = `${registry.host}/modelroll/filter:${tag}`;
  const r = await runTool(orasBinary(), ["cp", "--no-tty", "--from-oci-layout", `${join(repoRoot, "build", "image", "oci")}:${tag}`, ref, "--to-plain-http"]);
  if (r.status !== 0) throw new Error(`oras cp to ${ref} failed:\n${r.stdout}${r.stderr}`);
  return ref;
}

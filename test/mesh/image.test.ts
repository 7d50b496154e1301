// The filter's OCI image (npm run build:image) through a real registry: pushed with oras, pulled back with oras
// and with istio-agent's own fetcher (tools/istio-wasm, istio.io/istio/pkg/wasm); the module that comes out is
// build/filter.wasm byte for byte, and the sha256 the manifests carry is the one the agent accepts.
import { createServer, type Server } from "node:http";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../controller/src/paths.ts";
import { buildImage, LAYER_MEDIA_TYPE, sha256Hex } from "../../scripts/build-image.mjs";
import { loadManifests } from "./k8s-schemas.ts";
import { istioWasmBinary, lastLine, orasBinary, pushImage, runTool, startRegistry, type Registry } from "./tools.ts";

const WASM = join(repoRoot, "build", "filter.wasm");
let registry: Registry;
let image: ReturnType<typeof buildImage>;
let ref: string;
const temp: string[] = [];
const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temp.push(d);
  return d;
};

beforeAll(async () => {
  image = buildImage({ stamp: false });
  registry = await startRegistry();
  ref = await pushImage(registry, image.tag);
});

afterAll(async () => {
  await registry?.stop();
  for (const d of temp) rmSync(d, { recursive: true, force: true });
});

describe("the filter image through a real registry", () => {
  it("is reproducible: the same module builds the same image digest", () => {
    expect(buildImage({ stamp: false }).digest).toBe(image.digest);
    expect(image.moduleSha256).toBe(sha256Hex(readFileSync(WASM)));
  });

  it("the registry serves the manifest under the built digest: one tar+gzip layer", async () => {
    const res = await fetch(`http://${registry.host}/v2/modelroll/filter/manifests/${image.tag}`, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("docker-content-digest")).toBe(`sha256:${image.digest}`);
    const manifest = await res.json();
    expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual([LAYER_MEDIA_TYPE]);
  });

  it("oras pulls it back: the layer holds plugin.wasm, identical to build/filter.wasm", async () => {
    const out = tempDir("modelroll-pull-");
    const pulled = await runTool(orasBinary(), ["pull", "--no-tty", "--plain-http", "-o", out, ref]);
    expect(pulled.status, pulled.stderr).toBe(0);
    expect(readdirSync(out)).toEqual(["plugin.tar.gz"]);
    const listed = await runTool("tar", ["-xzf", join(out, "plugin.tar.gz"), "-C", out]);
    expect(listed.status, listed.stderr).toBe(0);
    expect(readFileSync(join(out, "plugin.wasm")).equals(readFileSync(WASM))).toBe(true);
  });

  it("istio-agent's fetcher extracts the same module when sha256 is the image digest, and refuses the module's sha256 for oci://", async () => {
    const cache = tempDir("modelroll-istio-cache-");
    const ok = await runTool(istioWasmBinary(), ["fetch", "-url", `oci://${ref}`, "-sha256", image.digest, "-dir", cache]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(readFileSync(lastLine(ok.stdout)).equals(readFileSync(WASM))).toBe(true);
    // What the agent compares for oci:// urls is the manifest digest: the module's own sha256 is a mismatch.
    const wrong = await runTool(istioWasmBinary(), ["fetch", "-url", `oci://${ref}`, "-sha256", image.moduleSha256, "-dir", tempDir("modelroll-istio-cache-")]);
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toContain(`has checksum ${image.digest}, which does not match: ${image.moduleSha256}`);
  });

  it("over https/http the agent checks the module's own sha256 instead", async () => {
    const server: Server = createServer((_, res) => res.end(readFileSync(WASM)));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/filter.wasm`;
      const ok = await runTool(istioWasmBinary(), ["fetch", "-url", url, "-sha256", image.moduleSha256, "-dir", tempDir("modelroll-istio-cache-")]);
      expect(ok.status, ok.stderr).toBe(0);
      expect(readFileSync(lastLine(ok.stdout)).equals(readFileSync(WASM))).toBe(true);
      const wrong = await runTool(istioWasmBinary(), ["fetch", "-url", url, "-sha256", image.digest, "-dir", tempDir("modelroll-istio-cache-")]);
      expect(wrong.stderr).toContain("does not match");
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it("deploy/istio's filter resources carry this build's image digest (else: npm run build:image, and commit)", () => {
    const files = ["filter.wasmplugin.yaml", "filter.trafficextension.yaml", "filter.gitops.wasmplugin.yaml", "filter.istiod.wasmplugin.yaml"].map((f) =>
      join(repoRoot, "deploy", "istio", f),
    );
    for (const { file, object } of loadManifests(files)) {
      const sha = object.kind === "WasmPlugin" ? object.spec.sha256 : object.spec.wasm.sha256;
      expect(sha, `${file}: sha256 is not the image built from build/filter.wasm; run 'npm run build:image' (it updates deploy/istio) and commit`).toBe(
        image.digest,
      );
    }
  });
});

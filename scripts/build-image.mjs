#!/usr/bin/env node
// `npm run build:image`: the filter as an OCI image in the Wasm "compat" format that istio-agent's fetcher
// reads (one application/vnd.oci.image.layer.v1.tar+gzip layer holding plugin.wasm), written into an OCI image
// layout at build/image/oci (tag = package.json version) by oras. Then:
//  - build/image/digest.txt: the image manifest digest (what a WasmPlugin's sha256 must be for an oci:// url);
//  - build/filter.wasm.sha256: the module's own sha256 (the sha256 of the https:// form);
//  - the `sha256:` lines marked "modelroll:image-digest" in deploy/istio/*.yaml are set to the digest.
// The image is reproducible: the same build/filter.wasm gives the same digest on any machine, because the layer
// bytes are written here (tar with fixed metadata, gzip of stored deflate blocks: no compressor whose output could
// differ between zlib builds) and the manifest's created annotation is fixed.
// Push it with: .tools/oras cp --from-oci-layout build/image/oci:<tag> REGISTRY/modelroll/filter:<tag>
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { crc32 } from "node:zlib";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const IMAGE_DIR = join(root, "build", "image");
export const LAYOUT_DIR = join(IMAGE_DIR, "oci");
export const LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip";
export const CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json";
const FIXED_CREATED = "1970-01-01T00:00:00Z";

export function imageTag() {
  return JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
}

export function orasBinary() {
  if (process.env.ORAS_BIN) return process.env.ORAS_BIN;
  const bin = join(root, ".tools", "oras");
  if (!existsSync(bin))
    throw new Error(
      "oras is not installed: run 'node scripts/test-tools.mjs oras' (it builds it into .tools/oras; 'npm run build:image' does this first) or set ORAS_BIN",
    );
  return bin;
}

export const sha256Hex = (bytes) => createHash("sha256").update(bytes).digest("hex");

/** A ustar archive of one regular file, with fixed owner, mode and time. */
export function tarOf(name, data) {
  const header = Buffer.alloc(512);
  const field = (offset, length, text) => header.write(text, offset, length, "ascii");
  const octal = (offset, length, value) => field(offset, length, `${value.toString(8).padStart(length - 1, "0")}\0`);
  field(0, 100, name);
  octal(100, 8, 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, data.length);
  octal(136, 12, 0);
  header.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  field(156, 1, "0");
  field(257, 6, "ustar\0");
  field(263, 2, "00");
  let sum = 0;
  for (const b of header) sum += b;
  field(148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  const padding = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header, data, padding, Buffer.alloc(1024)]);
}

/** gzip (RFC 1952) of stored deflate blocks (RFC 1951, BTYPE 00): no mtime, no name, the same bytes everywhere. */
export function storedGzip(data) {
  const parts = [Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])];
  const MAX = 65535;
  for (let off = 0; off < data.length || off === 0; off += MAX) {
    const chunk = data.subarray(off, Math.min(off + MAX, data.length));
    const last = off + MAX >= data.length;
    const head = Buffer.alloc(5);
    head[0] = last ? 1 : 0;
    head.writeUInt16LE(chunk.length, 1);
    head.writeUInt16LE(~chunk.length & 0xffff, 3);
    parts.push(head, chunk);
    if (last) break;
  }
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(data) >>> 0, 0);
  trailer.writeUInt32LE(data.length >>> 0, 4);
  parts.push(trailer);
  return Buffer.concat(parts);
}

function run(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8" });
  if (r.error || r.status !== 0) throw new Error(`'${cmd} ${args.join(" ")}' failed: ${r.error?.message ?? ""}${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Builds the image from build/filter.wasm; returns { digest, moduleSha256, tag, layout }. */
export function buildImage({ wasmPath = join(root, "build", "filter.wasm"), stamp = true } = {}) {
  if (!existsSync(wasmPath)) throw new Error(`${wasmPath} is missing: run 'npm run build:filter' first`);
  const wasm = readFileSync(wasmPath);
  const tar = tarOf("plugin.wasm", wasm);
  rmSync(IMAGE_DIR, { recursive: true, force: true });
  mkdirSync(IMAGE_DIR, { recursive: true });
  writeFileSync(join(IMAGE_DIR, "plugin.tar.gz"), storedGzip(tar));
  const config = { architecture: "wasm", os: "wasip1", config: {}, rootfs: { type: "layers", diff_ids: [`sha256:${sha256Hex(tar)}`] } };
  writeFileSync(join(IMAGE_DIR, "config.json"), JSON.stringify(config));
  const tag = imageTag();
  run(
    orasBinary(),
    [
      "push",
      "--no-tty",
      "--oci-layout",
      `${LAYOUT_DIR}:${tag}`,
      "--config",
      `config.json:${CONFIG_MEDIA_TYPE}`,
      "--annotation",
      `org.opencontainers.image.created=${FIXED_CREATED}`,
      `plugin.tar.gz:${LAYER_MEDIA_TYPE}`,
    ],
    IMAGE_DIR,
  );
  const index = JSON.parse(readFileSync(join(LAYOUT_DIR, "index.json"), "utf8"));
  const entry = index.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === tag);
  if (!entry) throw new Error(`oras wrote no manifest tagged ${tag} into ${LAYOUT_DIR}`);
  const digest = entry.digest.replace(/^sha256:/, "");
  const moduleSha256 = sha256Hex(wasm);
  writeFileSync(join(IMAGE_DIR, "digest.txt"), `${digest}\n`);
  writeFileSync(join(root, "build", "filter.wasm.sha256"), `${moduleSha256}\n`);
  const stamped = stamp ? stampManifests(digest) : [];
  return { digest, moduleSha256, tag, layout: LAYOUT_DIR, stamped };
}

const STAMP = /^(\s*sha256: )"?[0-9a-f]{64}"?( # modelroll:image-digest.*)$/gm;

/** The deploy/istio files whose marked sha256 lines differ from `digest`, after setting them to it. */
export function stampManifests(digest) {
  const changed = [];
  const dir = join(root, "deploy", "istio");
  for (const name of readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
    const path = join(dir, name);
    const text = readFileSync(path, "utf8");
    const next = text.replace(STAMP, `$1"${digest}"$2`);
    if (next !== text) {
      writeFileSync(path, next);
      changed.push(`deploy/istio/${name}`);
    }
  }
  return changed;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const r = buildImage();
    console.log(`modelroll build:image: ${r.layout} tag ${r.tag}`);
    console.log(`  image manifest digest sha256:${r.digest}   (WasmPlugin sha256 for oci:// urls)`);
    console.log(`  module sha256 ${r.moduleSha256}   (sha256 for https:// urls)`);
    console.log(r.stamped.length > 0 ? `  updated the sha256 in ${r.stamped.join(", ")}` : "  deploy/istio already carries this digest");
  } catch (err) {
    console.error(`modelroll build:image: ${err.message}`);
    process.exit(1);
  }
}

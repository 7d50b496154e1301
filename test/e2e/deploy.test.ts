// Every Envoy config in deploy/ must pass `envoy --mode validate`.
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderBootstrap, TEMPLATE_PATH } from "../../controller/src/envoy/bootstrap.ts";
import { renderModelsBootstrap } from "../../controller/src/envoy/models-bootstrap.ts";
import { validateEnvoyConfig } from "../../controller/src/envoy/process.ts";
import { repoRoot } from "../../controller/src/paths.ts";

const dir = mkdtempSync(join(tmpdir(), "modelroll-validate-"));
const hp = (port: number) => ({ host: "127.0.0.1", port });

function validateText(name: string, yaml: string) {
  const path = join(dir, name);
  writeFileSync(path, yaml);
  return validateEnvoyConfig(path);
}

describe("deploy/ configs validate in Envoy", () => {
  it("lists only configs this test knows how to check", () => {
    const files = readdirSync(join(repoRoot, "deploy", "envoy"));
    expect(files.sort()).toEqual(["envoy.template.yaml"]);
    expect(TEMPLATE_PATH.endsWith("envoy.template.yaml")).toBe(true);
  });

  it("the bootstrap template, rendered with npm start's defaults, validates", () => {
    const r = validateText("defaults.yaml", renderBootstrap({ listen: hp(10000), admin: hp(9901), stable: hp(9001), canary: hp(9002), controller: hp(8080) }));
    expect(r.output).toContain("OK");
    expect(r.ok).toBe(true);
  });

  it("renders with other ports and a custom variant header", () => {
    const r = validateText(
      "custom.yaml",
      renderBootstrap({
        listen: { host: "0.0.0.0", port: 18000 },
        admin: hp(19901),
        stable: hp(19001),
        canary: hp(19002),
        controller: hp(18080),
        variantHeader: "x-model-variant",
        routeTimeout: "5s",
        pollWaitSeconds: 5,
      }),
    );
    expect(r.ok).toBe(true);
  });

  it("host names become STRICT_DNS clusters (IPv4 preferred), IP addresses stay STATIC, in both bootstraps", () => {
    const yaml = renderBootstrap({ listen: hp(10000), admin: hp(9901), stable: { host: "localhost", port: 9001 }, canary: hp(9002), controller: hp(8080) });
    expect(yaml).toMatch(/- name: stable\n {4}type: STRICT_DNS\n {4}dns_lookup_family: V4_PREFERRED\n/);
    expect(yaml).toMatch(/- name: canary\n {4}type: STATIC\n/);
    expect(validateText("dns.yaml", yaml).ok).toBe(true);
    const models = renderModelsBootstrap({
      listen: hp(10000),
      admin: hp(9901),
      controller: hp(8080),
      models: [{ name: "a", pathPrefix: "/a", stable: { host: "models.internal", port: 1 }, canary: hp(2) }],
    });
    expect(models).toMatch(/- name: a-stable\n\s+type: STRICT_DNS\n\s+dns_lookup_family: V4_PREFERRED\n/);
    expect(models).toMatch(/- name: a-canary\n\s+type: STATIC\n/);
    expect(validateText("models-dns.yaml", models).ok).toBe(true);
  });

  it("a broken config is refused (the check can fail)", () => {
    const broken = renderBootstrap({ listen: hp(10000), admin: hp(9901), stable: hp(9001), canary: hp(9002), controller: hp(8080) }).replace(
      "failure_policy: FAIL_OPEN",
      "failure_policy: FAIL_SOMETIMES",
    );
    const r = validateText("broken.yaml", broken);
    expect(r.ok).toBe(false);
  });
});

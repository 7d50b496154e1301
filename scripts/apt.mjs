// Installing a Debian package a test needs (scripts/test-tools.mjs) without starting its service.
import { spawnSync } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";

// Debian's hook that invoke-rc.d and deb-systemd-invoke ask before starting a service; exit 101 = "don't".
export const POLICY_RC_D = "/usr/sbin/policy-rc.d";

function aptGet(args, cwd) {
  const r = spawnSync("apt-get", ["-o", "DPkg::Lock::Timeout=120", ...args], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  return { error: r.error, status: r.status, output: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

export function tail(text, lines = 30) {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/**
 * `apt-get install -y --no-install-recommends <pkg>`, with `apt-get update` first only when the lists are missing
 * or stale. The package's service is kept from starting (tests start their own on free ports); a policy-rc.d
 * already in place (Docker images have one) is left alone.
 * Returns { ok: true, note } or { ok: false, message } (the caller fails with its own advice).
 */
export function aptInstall(pkg, cwd) {
  const ownPolicy = !existsSync(POLICY_RC_D);
  let servicesHeld = !ownPolicy;
  let policyProblem = "";
  if (ownPolicy) {
    try {
      writeFileSync(POLICY_RC_D, "#!/bin/sh\n# modelroll test tools: no service starts during this apt-get run\nexit 101\n", { mode: 0o755 });
      servicesHeld = true;
    } catch (error) {
      policyProblem = `could not write ${POLICY_RC_D} (${error.message}); the package may start its own service`;
    }
  }
  let result;
  let updated = false;
  let problem = null;
  const install = ["install", "-y", "--no-install-recommends", pkg];
  try {
    result = aptGet(install, cwd);
    // No or stale package lists: "Unable to locate package", "has no installation candidate", 404s on fetch.
    if (
      result.status !== 0 &&
      !result.error &&
      /Unable to locate package|no installation candidate|404\s+Not Found|Failed to fetch|apt-get update/i.test(result.output)
    ) {
      console.log(`modelroll test tools: apt-get could not find or fetch ${pkg}; running apt-get update and trying again`);
      const update = aptGet(["update"], cwd);
      if (update.status !== 0) problem = `'apt-get update' failed (exit ${update.status ?? update.error?.message}):\n${tail(update.output)}`;
      else {
        updated = true;
        result = aptGet(install, cwd);
      }
    }
  } finally {
    // Removed before the caller can fail: process.exit would skip this.
    if (ownPolicy) rmSync(POLICY_RC_D, { force: true });
  }
  if (problem) return { ok: false, message: problem };
  if (result.error?.code === "ENOENT") return { ok: false, message: "apt-get is not available" };
  if (result.error) return { ok: false, message: `apt-get: ${result.error.message}` };
  if (result.status !== 0) {
    return {
      ok: false,
      message: `'apt-get ${install.join(" ")}'${updated ? " (after apt-get update)" : ""} exited with ${result.status}:\n${tail(result.output)}`,
    };
  }
  const service = servicesHeld ? `its system service was not started (${POLICY_RC_D} refused it)` : `${policyProblem}`;
  return { ok: true, note: `apt-get${updated ? ", after apt-get update" : ""}; ${service}`, output: result.output };
}

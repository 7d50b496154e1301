// The Debian packages only the tests (and two benches) run: Prometheus (the PromQL and Prometheus-source
// end-to-end tests, bench:prometheus) and Chromium (the dashboard's browser tests, bench:dashboard). Installed
// with apt-get by scripts/test-tools.mjs on first need, never by `npm install`. PROMETHEUS_BIN and CHROMIUM_BIN
// point at binaries you already have instead (then nothing is installed).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { aptInstall, tail } from "./apt.mjs";

export const PROMETHEUS_DEFAULT_BIN = "/usr/bin/prometheus";
export const CHROMIUM_DEFAULT_BIN = "/usr/bin/chromium";

function versionOf(bin, args, pattern) {
  const r = spawnSync(bin, args, { encoding: "utf8" });
  if (r.error || r.status !== 0) return null;
  // Prometheus 2.x prints its version on stdout or stderr depending on the build: read both.
  const m = `${r.stdout}${r.stderr}`.match(pattern);
  return m ? m[1] : "unknown";
}

/**
 * One Debian package providing one binary: the override from the environment, else the package's binary if it
 * runs, else apt-get. Returns what it found or did, in words; calls fail(message) (which must not return) otherwise.
 */
function ensureDebianBinary({ name, pkg, envVar, defaultBin, versionArgs, pattern, size, usedBy }, say, fail) {
  const version = (bin) => versionOf(bin, versionArgs, pattern);
  const fromEnv = process.env[envVar];
  if (fromEnv) {
    const v = version(fromEnv);
    if (v === null) fail(`${envVar}=${fromEnv} does not run ('${versionArgs.join(" ")}' failed)`);
    return `using ${envVar}=${fromEnv} (${name} ${v})`;
  }
  if (existsSync(defaultBin)) {
    const v = version(defaultBin);
    if (v === null) fail(`${defaultBin} exists but does not run; reinstall the ${pkg} package or set ${envVar}`);
    return `${name} ${v} already at ${defaultBin}`;
  }
  say(`${name} is missing: apt-get install ${pkg} (Debian package, ${size}; ${usedBy}). ${envVar}=/path/to/${pkg} uses one you have instead.`);
  const installed = aptInstall(pkg, process.cwd());
  if (!installed.ok) fail(`installing ${pkg}: ${installed.message}\nInstall ${name} yourself and set ${envVar}=/path/to/${pkg}, or fix the error above.`);
  const v = version(defaultBin);
  if (v === null) fail(`apt-get installed ${pkg} but ${defaultBin} does not run:\n${tail(installed.output)}`);
  const service =
    pkg === "prometheus" && existsSync("/run/systemd/system")
      ? "; the package enables prometheus.service (port 9090) for the next boot, which the tests do not use ('systemctl disable --now prometheus' turns it off)"
      : "";
  return `${name} ${v} installed at ${defaultBin} (${installed.note}${service})`;
}

export function ensurePrometheus(say, fail) {
  return ensureDebianBinary(
    {
      name: "Prometheus",
      pkg: "prometheus",
      envVar: "PROMETHEUS_BIN",
      defaultBin: PROMETHEUS_DEFAULT_BIN,
      versionArgs: ["--version"],
      pattern: /prometheus, version (\S+)/,
      size: "about 20 MB",
      usedBy: "the PromQL end-to-end tests and bench:prometheus run a real Prometheus",
    },
    say,
    fail,
  );
}

export function ensureChromium(say, fail) {
  return ensureDebianBinary(
    {
      name: "Chromium",
      pkg: "chromium",
      envVar: "CHROMIUM_BIN",
      defaultBin: CHROMIUM_DEFAULT_BIN,
      versionArgs: ["--version"],
      pattern: /Chromium (\S+)/,
      size: "about 100 MB with its libraries",
      usedBy: "the dashboard's browser tests and bench:dashboard drive it",
    },
    say,
    fail,
  );
}

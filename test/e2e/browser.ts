// Real Chromium for the dashboard tests: Debian's chromium (CHROMIUM_BIN overrides), driven by playwright-core,
// headless, with a fresh profile and everything that would reach for the network turned off (the machine
// has no network; without these flags Chromium keeps trying and floods refused connections).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { repoRoot } from "../../controller/src/paths.ts";

export const ARTIFACTS = join(repoRoot, ".artifacts", "dashboard");

export function chromiumBinary(): string {
  const bin = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
  if (!existsSync(bin))
    throw new Error(`Chromium not found at ${bin}: run 'node scripts/test-tools.mjs chromium' (it installs Debian's chromium) or set CHROMIUM_BIN`);
  return bin;
}

export interface Browser {
  context: BrowserContext;
  version: string;
  /** A new tab that records console errors and CSP violations. */
  page(): Promise<Page & { problems: string[] }>;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), "modelroll-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumBinary(),
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    context,
    version: context.browser()?.version() ?? (await versionOf(context)),
    async page() {
      const page = (await context.newPage()) as Page & { problems: string[] };
      page.problems = [];
      page.on("console", (m) => {
        if (m.type() === "error" && !/the server responded with a status of (400|401|403|404|409|412)/.test(m.text()))
          page.problems.push(`console: ${m.text()}`);
      });
      page.on("pageerror", (e) => page.problems.push(`page error: ${e.message}`));
      return page;
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

async function versionOf(context: BrowserContext): Promise<string> {
  const page = await context.newPage();
  const ua = await page.evaluate(() => navigator.userAgent);
  await page.close();
  return /Chrome\/(\S+)/.exec(ua)?.[1] ?? "unknown";
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

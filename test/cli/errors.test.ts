// What goes wrong, said in one line with the documented exit code: a dead controller, a missing or wrong
// token, a spec the controller refuses, bad arguments. Never a stack trace.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../controller/src/net.ts";
import { startController, type RunningController } from "../../controller/src/server.ts";
import { cli, runCliProcess } from "./helpers.ts";

const TOKEN = "api-token-0123456789abcdef";
const FILTER_TOKEN = "filter-token-0123456789abcdef";
let secured: RunningController;
beforeAll(async () => {
  secured = await startController({ tickIntervalMs: 0, apiToken: TOKEN, filterToken: FILTER_TOKEN, logger: false });
});
afterAll(async () => {
  await secured?.close();
});

const oneLine = (text: string) => text.endsWith("\n") && !text.slice(0, -1).includes("\n");

describe("modelroll errors", () => {
  it("a dead controller: 'cannot reach the controller at URL: ECONNREFUSED', exit 3 (the real command too)", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    for (const argv of [["list"], ["get", "x"], ["promote", "x"], ["status", "x"], ["get", "x", "--watch"]]) {
      const result = await cli(["--server", dead, ...argv]);
      expect(result, argv.join(" ")).toEqual({ code: 3, stdout: "", stderr: `modelroll: cannot reach the controller at ${dead}: ECONNREFUSED\n` });
    }
    const real = await runCliProcess(["list"], { MODELROLL_SERVER: dead });
    expect(real).toEqual({ code: 3, stdout: "", stderr: `modelroll: cannot reach the controller at ${dead}: ECONNREFUSED\n` });
  });

  it("no token or a wrong one: 'unauthorized: set MODELROLL_TOKEN', exit 3; the read-only token cannot write", async () => {
    const env = { MODELROLL_SERVER: secured.url };
    const none = await cli(["list"], { env });
    expect(none).toEqual({ code: 3, stdout: "", stderr: "modelroll: unauthorized: set MODELROLL_TOKEN (the controller requires a bearer token)\n" });
    const wrong = await runCliProcess(["list"], { ...env, MODELROLL_TOKEN: "not-the-token-at-all-0000" });
    expect(wrong).toEqual({
      code: 3,
      stdout: "",
      stderr: "modelroll: unauthorized: set MODELROLL_TOKEN to the controller's API token (it refused the one given)\n",
    });
    expect(await cli(["list"], { env: { ...env, MODELROLL_TOKEN: TOKEN } })).toEqual({ code: 0, stdout: "no rollouts\n", stderr: "" });
    // --token wins over the environment.
    expect((await cli(["--token", TOKEN, "list"], { env: { ...env, MODELROLL_TOKEN: "wrong-wrong-wrong-wrong" } })).code).toBe(0);
    const readOnly = await cli(["create", "-f", "-"], {
      env: { ...env, MODELROLL_TOKEN: FILTER_TOKEN },
      stdin: "name: a\nmatch: { pathPrefix: /a }\nstickyKey: { header: x-user-id }\n",
    });
    expect(readOnly).toEqual({
      code: 3,
      stdout: "",
      stderr: "modelroll: forbidden: POST /v1/rollouts: the filter token may only read; writes need the API token\n",
    });
  });

  it("a spec the controller refuses: its message with every field path, one line, exit 1", async () => {
    const env = { MODELROLL_SERVER: secured.url, MODELROLL_TOKEN: TOKEN };
    const result = await cli(["create", "-f", "-"], {
      env,
      stdin: "name: Bad.Name\nmatch: { pathPrefix: nope }\nstickyKey: { header: x-user-id }\nstages: [5]\n",
    });
    expect(result.code).toBe(1);
    expect(oneLine(result.stderr)).toBe(true);
    expect(result.stderr).toMatch(
      /^modelroll: rollout Bad\.Name: invalid request body: \/name must be a DNS label.*; \/match\/pathPrefix must start with \/.*; \/stages\/0 .*\n$/,
    );
  });

  it("bad arguments: one line, exit 3, before any request", async () => {
    const cases: Array<[string[], string]> = [
      [["get"], "modelroll: missing required argument 'name' (add --help for usage)\n"],
      [["promot", "x"], "modelroll: unknown command 'promot' (Did you mean promote?) (add --help for usage)\n"],
      [["weight", "x", "150"], "modelroll: weight: expected a percent 0-100 with at most two decimals, got '150'\n"],
      [["status", "x", "--timeout", "soon"], "modelroll: --timeout: expected a duration like 30m, 90s or 1h30m, got 'soon'\n"],
      [["pause", "x", "--if-revision", "abc"], "modelroll: --if-revision: expected a revision number (the ETag without quotes), got 'abc'\n"],
      [["measure", "x", "--metric", "m", "--variant", "canary", "1", "two"], "modelroll: measure: 'two' is not a number\n"],
      [["--server", "ftp://x", "list"], "modelroll: --server: expected a URL like http://127.0.0.1:8080, got 'ftp://x'\n"],
      [
        ["get", "x", "-o", "xml"],
        "modelroll: option '-o, --output <format>' argument 'xml' is invalid. Allowed choices are table, json, yaml. (add --help for usage)\n",
      ],
    ];
    for (const [argv, stderr] of cases)
      expect(await cli(argv, { env: { MODELROLL_SERVER: "http://127.0.0.1:9" } }), argv.join(" ")).toEqual({ code: 3, stdout: "", stderr });
  });

  it("--help on every command, exit 0; the top-level help documents the exit codes", async () => {
    const top = await cli(["--help"]);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain("Exit codes:\n  0  done");
    for (const command of [
      "list",
      "get",
      "create",
      "apply",
      "delete",
      "lint",
      "weight",
      "shadow",
      "promote",
      "pause",
      "resume",
      "abort",
      "undo",
      "fail",
      "accept-upstreams",
      "review",
      "measure",
      "status",
      "history",
      "report",
      "stats",
      "completion",
    ]) {
      const help = await cli([command, "--help"]);
      expect(help.code, command).toBe(0);
      expect(help.stdout, command).toMatch(new RegExp(`^Usage: modelroll ${command}[| ]`));
      expect(help.stdout, command).toContain("--server <url>");
      if (!["completion", "delete"].includes(command)) expect(help.stdout, command).toMatch(/-o, --output <format>|-o, --output/);
    }
    expect((await cli(["status", "--help"])).stdout).toContain(
      "Exit 0: Succeeded; 1: RolledBack, Failed or deleted; 2: still running at --timeout; 3: usage or connection error.",
    );
  });
});

// The models file of `npm start -- --models`: what it accepts, and every refusal with the file and the field.
import { describe, expect, it } from "vitest";
import { parseModelsFile } from "../../controller/src/cli/models-file.ts";

const GOOD = `models:
  - name: fraud-model
    pathPrefix: /v1/models/fraud-model
    stable: http://127.0.0.1:9001
    canary: http://127.0.0.1:9002
    shadow: http://127.0.0.1:9003
  - name: churn-model
    pathPrefix: /v1/models/churn-model
    stable: http://127.0.0.1:9011
    canary: http://127.0.0.1:9012
`;

describe("models file", () => {
  it("reads every model with its endpoints; the shadow defaults to the canary (in the bootstrap)", () => {
    const models = parseModelsFile(GOOD, "models.yaml");
    expect(models.map((m) => [m.name, m.pathPrefix, m.stable.port, m.canary.port, m.shadow?.port ?? null])).toEqual([
      ["fraud-model", "/v1/models/fraud-model", 9001, 9002, 9003],
      ["churn-model", "/v1/models/churn-model", 9011, 9012, null],
    ]);
  });

  it.each([
    ["models: []", "models.yaml: /models: must NOT have fewer than 1 items"],
    [
      "models:\n  - name: Fraud\n    pathPrefix: /a\n    stable: http://127.0.0.1:1\n    canary: http://127.0.0.1:2",
      "models.yaml: /models/0/name: must be a DNS label of at most 56 characters (lowercase letters, digits, '-')",
    ],
    [
      "models:\n  - name: a\n    pathPrefix: a\n    stable: http://127.0.0.1:1\n    canary: http://127.0.0.1:2",
      "models.yaml: /models/0/pathPrefix: must start with / and contain no whitespace",
    ],
    ["models:\n  - name: a\n    pathPrefix: /a\n    stable: http://127.0.0.1:1", "models.yaml: /models/0: 'canary' is required"],
    [
      "models:\n  - name: a\n    pathPrefix: /a\n    stable: http://127.0.0.1:1\n    canary: http://127.0.0.1:2\n    canery: x",
      "models.yaml: /models/0: unknown field 'canery'",
    ],
    [
      "models:\n  - name: a\n    pathPrefix: /a\n    stable: ftp://models.local:1\n    canary: http://127.0.0.1:2",
      "models.yaml: /models/0/stable: only http:// upstreams are supported, got 'ftp://models.local:1'",
    ],
    [GOOD.replace("churn-model\n", "fraud-model\n"), "models.yaml: /models/1/name: fraud-model is listed twice"],
    [GOOD.replace("/v1/models/churn-model", "/v1/models/fraud-model"), "models.yaml: /models/1/pathPrefix: /v1/models/fraud-model is also fraud-model's"],
    ["models: [", "models.yaml: not YAML: "],
  ])("refuses %j", (text, error) => {
    expect(() => parseModelsFile(text, "models.yaml")).toThrow(error);
  });
});

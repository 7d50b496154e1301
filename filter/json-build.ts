// JSON values built by the filter rather than parsed (the assembled message of a streamed answer, llm-stream.ts),
// shaped as the parser's so the schema validator and the analysis read them alike.
import { JsonKind, JsonValue } from "./json";

export function stringValue(s: string): JsonValue {
  const v = new JsonValue();
  v.kind = JsonKind.String;
  v.str = s;
  return v;
}

export function numberValue(n: f64): JsonValue {
  const v = new JsonValue();
  v.kind = JsonKind.Number;
  v.num = n;
  return v;
}

export function nullValue(): JsonValue {
  return new JsonValue();
}

export function arrayValue(items: Array<JsonValue>): JsonValue {
  const v = new JsonValue();
  v.kind = JsonKind.Array;
  v.items = items;
  return v;
}

export function objectValue(keys: Array<string>, values: Array<JsonValue>): JsonValue {
  const v = new JsonValue();
  v.kind = JsonKind.Object;
  v.keys = keys;
  v.values = values;
  return v;
}

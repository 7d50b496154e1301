/**
 * YAML and JSON text from outside (API bodies, `modelroll lint`/`apply` files, `--models`) read with bounds
 * checked before any parser that could be hurt by the text sees it.
 *
 * Why: the `yaml` package's composer recurses once per nesting level; about 1,000 nested `[` (2 KB) take
 * Node past the point where V8 can still compile a regular expression, and the process aborts (a fatal error,
 * no exception to catch). Its duplicate-key check is quadratic in a mapping's size (96,000 keys: minutes).
 * So a YAML text goes through three passes, each linear and each stopping at the first limit crossed:
 * the lexer (flow brackets and same-line block indicators, the two ways to nest deeply in few bytes), the
 * CST parser (iterative; the exact depth, entries per collection, values in all), then the composer with
 * the duplicate-key check done here in one pass. JSON gets the same limits with a scan that knows its strings.
 */
import { isUtf8 } from "node:buffer";
import { Composer, CST, isMap, isPair, isScalar, isSeq, Lexer, Parser, type Document, type Node } from "yaml";

export const TEXT_LIMITS = {
  /** Collections inside collections; a rollout spec needs about 10, a deep output schema 30. */
  maxDepth: 64,
  /** Keys of one mapping, items of one sequence: as many as the largest array a route takes (10,000 measurements). */
  maxEntries: 10_000,
  /** Values (scalars and collections) in one text. */
  maxValues: 20_000,
  /** A YAML text's size in bytes (JSON: the API's body limit, 1 MiB). The YAML parser reads about 1 MiB/s. */
  maxYamlBytes: 256 * 1024,
} as const;

export type TextLimits = typeof TEXT_LIMITS;

/** The text is well-formed but beyond a limit, or not well-formed; `where` says where when known. */
export class TextShapeError extends Error {
  constructor(
    message: string,
    readonly offset?: number,
  ) {
    super(message);
  }
}

/** "line L, column C" of a character offset (1-based, as editors count). */
export function lineColumn(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let start = 0;
  const end = Math.min(offset, text.length);
  for (let i = text.indexOf("\n"); i !== -1 && i < end; i = text.indexOf("\n", i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, col: end - start + 1 };
}

function at(text: string, offset: number): string {
  const { line, col } = lineColumn(text, offset);
  return `at line ${line}, column ${col}`;
}

const tooDeep = (limits: TextLimits) => `nesting deeper than ${limits.maxDepth} levels`;
const tooMany = (limits: TextLimits, n: number) => `a collection of ${n} entries (at most ${limits.maxEntries})`;
const tooManyValues = (limits: TextLimits) => `more than ${limits.maxValues} values`;

// The lexer's markers that stand for no source text.
const MARKERS = new Set(["\x02", "\x18", "\x1f"]);

/** Pass 1: the nesting that costs the CST parser most per byte, refused before it runs. */
function lexerPass(text: string, limits: TextLimits): void {
  let flow = 0;
  let indicators = 0;
  let offset = 0;
  for (const source of new Lexer().lex(text)) {
    switch (CST.tokenType(source)) {
      case "flow-seq-start":
      case "flow-map-start":
        if (++flow > limits.maxDepth) throw new TextShapeError(`${tooDeep(limits)} ${at(text, offset)}`, offset);
        break;
      case "flow-seq-end":
      case "flow-map-end":
        if (flow > 0) flow--;
        break;
      case "newline":
        indicators = 0;
        break;
      case "seq-item-ind":
      case "explicit-key-ind":
      case "map-value-ind":
        // `- - - - x`: block collections nested on one line.
        if (flow === 0 && ++indicators > limits.maxDepth) throw new TextShapeError(`${tooDeep(limits)} ${at(text, offset)}`, offset);
        break;
    }
    if (!MARKERS.has(source)) offset += source.length;
  }
}

type CstItem = { key?: CST.Token | null; value?: CST.Token };

/** Pass 2: the exact structure from the CST, walked without recursion. */
function cstPass(text: string, tokens: CST.Token[], limits: TextLimits): void {
  const stack: Array<[CST.Token, number]> = tokens.map((t) => [t, 0]);
  let values = 0;
  while (stack.length > 0) {
    const [token, depth] = stack.pop() as [CST.Token, number];
    let items: CstItem[] = [];
    if (token.type === "document") {
      if (token.value) stack.push([token.value, depth]);
      continue;
    }
    if (token.type === "block-map" || token.type === "block-seq" || token.type === "flow-collection") items = token.items;
    else {
      if (++values > limits.maxValues) throw new TextShapeError(`${tooManyValues(limits)} ${at(text, offsetOf(token))}`, offsetOf(token));
      continue;
    }
    const offset = offsetOf(token);
    if (depth + 1 > limits.maxDepth) throw new TextShapeError(`${tooDeep(limits)} ${at(text, offset)}`, offset);
    if (items.length > limits.maxEntries) throw new TextShapeError(`${tooMany(limits, items.length)} ${at(text, offset)}`, offset);
    values += 1;
    for (const item of items) {
      if (item.key) stack.push([item.key, depth + 1]);
      if (item.value) stack.push([item.value, depth + 1]);
    }
  }
}

function offsetOf(token: CST.Token): number {
  return "offset" in token && typeof token.offset === "number" ? token.offset : 0;
}

/** The first duplicate key of any mapping, found in one pass (the yaml package compares every pair). */
function duplicateKey(doc: Document): Node | null {
  const stack: unknown[] = [doc.contents];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        const key = pair.key;
        if (isScalar(key)) {
          const id = `${typeof key.value}:${String(key.value)}`;
          if (seen.has(id)) return key;
          seen.add(id);
        }
        stack.push(key, pair.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push(isPair(item) ? item.value : item);
    }
  }
  return null;
}

/** A YAML syntax problem of a document: "syntax error at line L, column C: <reason>". */
export class YamlSyntaxError extends TextShapeError {
  constructor(text: string, offset: number, reason: string) {
    const { line, col } = lineColumn(text, offset);
    super(`syntax error at line ${line}, column ${col}: ${reason}`, offset);
  }
}

/**
 * Every document of a YAML (or JSON) text, composed only when the text is within the limits; throws
 * TextShapeError (a limit, with line and column) or YamlSyntaxError (the first syntax error).
 */
export function composeYaml(text: string, options: { single: boolean; limits?: TextLimits }): Document.Parsed[] {
  const limits = options.limits ?? TEXT_LIMITS;
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > limits.maxYamlBytes) {
    throw new TextShapeError(`YAML text of ${bytes} bytes; the limit is ${limits.maxYamlBytes} bytes (JSON may be larger)`);
  }
  lexerPass(text, limits);
  const tokens = Array.from(new Parser().parse(text));
  cstPass(text, tokens, limits);
  const composer = new Composer({ uniqueKeys: false, prettyErrors: false });
  const docs: Document.Parsed[] = [];
  for (const doc of composer.compose(tokens, options.single, text.length)) {
    docs.push(doc as Document.Parsed);
    if (options.single && docs.length > 1) throw new YamlSyntaxError(text, doc.range[0], "more than one document; give one");
  }
  for (const doc of docs) {
    const [first] = doc.errors;
    if (first) throw new YamlSyntaxError(text, first.pos[0], (first.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, ""));
    const duplicate = duplicateKey(doc);
    if (duplicate) {
      const offset = duplicate.range?.[0] ?? 0;
      throw new YamlSyntaxError(text, offset, "Map keys must be unique");
    }
  }
  return docs;
}

/** A document as plain data; an alias expanding past the limit is a TextShapeError, not a crash. */
export function documentValue(doc: Document.Parsed): unknown {
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    if (error instanceof ReferenceError) throw new TextShapeError("aliases expand to too many values (at most 100 uses of one anchor's values)");
    throw error;
  }
}

/** One YAML (or JSON) document as plain data, within the limits. */
export function parseYamlBounded(text: string, limits: TextLimits = TEXT_LIMITS): unknown {
  const [doc] = composeYaml(text, { single: true, limits });
  return doc ? documentValue(doc) : null;
}

/**
 * JSON nesting measured before JSON.parse builds it (the parser itself copes; every recursive reader after
 * it would not). Exact for valid JSON: strings are the only place a bracket is not structure.
 */
export function checkJsonText(text: string, limits: TextLimits = TEXT_LIMITS): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limits.maxDepth) throw new TextShapeError(`${tooDeep(limits)} ${at(text, i)}`, i);
    } else if ((c === 0x5d || c === 0x7d) && depth > 0) depth--;
  }
}

// Half a surrogate pair (code units, no u flag): what String.prototype.isWellFormed finds, before ES2024.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Entries per collection and values in all of parsed data, walked without recursion; and every string and key
 * well-formed Unicode (a JSON or YAML escape can write half a surrogate pair, which no UTF-8 can carry on).
 */
export function checkValueShape(value: unknown, limits: TextLimits = TEXT_LIMITS): void {
  const stack: Array<[unknown, string]> = [[value, ""]];
  let values = 0;
  while (stack.length > 0) {
    const [node, path] = stack.pop() as [unknown, string];
    if (++values > limits.maxValues) throw new TextShapeError(tooManyValues(limits));
    if (typeof node === "string" && LONE_SURROGATE.test(node)) throw notUnicode(path || "(root)");
    if (typeof node !== "object" || node === null) continue;
    const keys = Array.isArray(node) ? null : Object.keys(node);
    const size = keys ? keys.length : (node as unknown[]).length;
    if (size > limits.maxEntries) throw new TextShapeError(`${tooMany(limits, size)} at ${path || "(root)"}`);
    for (const key of keys ?? []) {
      if (LONE_SURROGATE.test(key)) throw notUnicode(`a key of ${path || "(root)"}`);
      stack.push([(node as Record<string, unknown>)[key], `${path}/${escapePointer(key)}`]);
    }
    if (!keys) for (const [i, item] of (node as unknown[]).entries()) stack.push([item, `${path}/${i}`]);
  }
}

const notUnicode = (where: string) => new TextShapeError(`${where}: not valid Unicode (an unpaired surrogate escape)`);

function escapePointer(token: string): string {
  return token.replace(/~/g, "~0").replace(/\//g, "~1");
}

/** The offset of the first byte that does not belong to well-formed UTF-8 (RFC 3629), or -1. */
export function invalidUtf8Offset(bytes: Uint8Array): number {
  if (isUtf8(bytes)) return -1;
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      i++;
      continue;
    }
    const need = b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : 0;
    if (need === 0 || i + need >= bytes.length) return i;
    // The second byte's range excludes overlong forms, surrogates and code points past U+10FFFF.
    const lo = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
    const hi = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf;
    const second = bytes[i + 1] as number;
    if (second < lo || second > hi) return i;
    for (let k = 2; k <= need; k++) if (((bytes[i + k] as number) & 0xc0) !== 0x80) return i;
    i += need + 1;
  }
  return -1;
}

/** The JSON pointer of the deepest value (or key) of a document whose source covers a character offset. */
function pointerAt(doc: Document.Parsed, offset: number): string | null {
  const covers = (node: unknown) => {
    const range = (node as { range?: [number, number, number] } | null)?.range;
    return range !== undefined && range[0] <= offset && offset < range[2];
  };
  let node: unknown = doc.contents;
  let path = "";
  for (;;) {
    let next: unknown;
    if (isMap(node)) {
      for (const pair of node.items) {
        if (covers(pair.key)) return `a key of ${path || "(root)"}`;
        const name = escapePointer(String(isScalar(pair.key) ? pair.key.value : pair.key));
        if (covers(pair.value)) {
          path += `/${name}`;
          next = pair.value;
          break;
        }
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        if (next === undefined && covers(item)) {
          path += `/${i}`;
          next = item;
        }
      });
    }
    if (next === undefined) return path === "" && !covers(node) ? null : path || "(root)";
    node = next;
  }
}

/**
 * Bytes as text, refusing what is not UTF-8 rather than replacing it (a path prefix with U+FFFD in it routes
 * nothing anyone sent). The error names the field holding the bad byte when the rest parses, else the byte.
 */
export function decodeUtf8(bytes: Buffer, limits: TextLimits = TEXT_LIMITS): string {
  const bad = invalidUtf8Offset(bytes);
  const text = bytes.toString("utf8");
  if (bad === -1) return text;
  const where = `byte ${bad}`;
  let field: string | null = null;
  try {
    const [doc] = composeYaml(text, { single: true, limits });
    if (doc) field = pointerAt(doc, bytes.subarray(0, bad).toString("utf8").length);
  } catch {
    // Not parseable with the byte replaced: the byte offset is all there is to say.
  }
  throw new TextShapeError(field ? `invalid UTF-8 in ${field} (${where}); send UTF-8` : `invalid UTF-8 at ${where}; send UTF-8`, bad);
}

// Segment dimensions of a rollout: how traffic is sliced for stats and gates (tenant tier, endpoint,
// request size...). Every dimension has a bounded list of values; the filter counts anything else as
// "other", so a client cannot grow the number of stat series.
import { Type, type Static } from "@sinclair/typebox";
import { REASONS_KEYWORD, type ErrorDetail } from "../errors.ts";
import { HEADER_NAME_PATTERN, PATH_PREFIX_PATTERN } from "./patterns.ts";

/** Names and values become Envoy stat name parts and Prometheus label values: no dots. */
export const SEGMENT_TOKEN_PATTERN = "^[a-z0-9_-]{1,32}$";
const tokenReason = { pattern: "must be 1 to 32 of a-z, 0-9, '_' and '-' (it becomes a stat label)" };

const SegmentValue = Type.String({ pattern: SEGMENT_TOKEN_PATTERN, [REASONS_KEYWORD]: tokenReason });

export const SegmentSpec = Type.Object(
  {
    name: Type.String({ pattern: SEGMENT_TOKEN_PATTERN, examples: ["tenant_tier"], [REASONS_KEYWORD]: tokenReason }),
    header: Type.Optional(
      Type.String({
        pattern: HEADER_NAME_PATTERN,
        maxLength: 128,
        description: "Request header whose (lowercased) value is the segment value.",
        [REASONS_KEYWORD]: { pattern: "must be a lowercase HTTP header name, e.g. x-tenant-tier" },
      }),
    ),
    values: Type.Optional(
      Type.Array(SegmentValue, { minItems: 1, maxItems: 16, uniqueItems: true, description: "Allowed header values; others count as 'other'." }),
    ),
    endpoints: Type.Optional(
      Type.Array(
        Type.Object(
          {
            value: SegmentValue,
            pathPrefix: Type.String({
              pattern: PATH_PREFIX_PATTERN,
              maxLength: 256,
              [REASONS_KEYWORD]: { pattern: "must start with / and contain no whitespace" },
            }),
          },
          { additionalProperties: false },
        ),
        { minItems: 1, maxItems: 16, description: "Segment value by longest matching path prefix." },
      ),
    ),
    requestSizeBytes: Type.Optional(
      Type.Array(Type.Integer({ minimum: 0 }), {
        minItems: 1,
        maxItems: 8,
        description: "Ascending upper bounds of request size (content-length); values le_<bound> and gt_<last>.",
      }),
    ),
  },
  { additionalProperties: false },
);
export type SegmentSpec = Static<typeof SegmentSpec>;

export const MAX_SEGMENTS = 4;

/** What the filter receives for one dimension (filter/config.ts parses it). */
export type FilterSegment =
  | { name: string; header: string; values: string[] }
  | { name: string; prefixes: string[]; values: string[] }
  | { name: string; bounds: number[]; values: string[] };

/** The checks a JSON schema cannot express; every problem is reported with its JSON pointer. */
export function checkSegments(segments: SegmentSpec[], basePath = "/segments"): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  const seen = new Set<string>();
  segments.forEach((seg, i) => {
    const at = `${basePath}/${i}`;
    if (seen.has(seg.name)) details.push({ path: `${at}/name`, reason: `duplicate dimension '${seg.name}'` });
    seen.add(seg.name);
    const sources = [seg.header, seg.endpoints, seg.requestSizeBytes].filter((x) => x !== undefined).length;
    if (sources !== 1) {
      details.push({ path: at, reason: "needs exactly one of header (with values), endpoints, requestSizeBytes" });
      return;
    }
    if (seg.header !== undefined && seg.values === undefined) details.push({ path: `${at}/values`, reason: "a header dimension lists its allowed values" });
    if (seg.header === undefined && seg.values !== undefined) details.push({ path: `${at}/values`, reason: "only a header dimension takes values" });
    for (const [j, value] of (seg.values ?? []).entries()) {
      if (value === "other") details.push({ path: `${at}/values/${j}`, reason: "'other' is reserved for values not listed" });
    }
    const endpointValues = new Set<string>();
    for (const [j, e] of (seg.endpoints ?? []).entries()) {
      if (e.value === "other") details.push({ path: `${at}/endpoints/${j}/value`, reason: "'other' is reserved for paths not listed" });
      if (endpointValues.has(e.value)) details.push({ path: `${at}/endpoints/${j}/value`, reason: `duplicate value '${e.value}'` });
      endpointValues.add(e.value);
    }
    const bounds = seg.requestSizeBytes ?? [];
    for (const [j, bound] of bounds.entries()) {
      const previous = bounds[j - 1];
      if (previous !== undefined && bound <= previous) details.push({ path: `${at}/requestSizeBytes/${j}`, reason: "must be greater than the previous bound" });
    }
  });
  if (segments.length > MAX_SEGMENTS) details.push({ path: basePath, reason: `at most ${MAX_SEGMENTS} dimensions` });
  return details;
}

function sizeValues(bounds: number[]): string[] {
  return [...bounds.map((b) => `le_${b}`), `gt_${bounds[bounds.length - 1]}`];
}

export function toFilterSegment(seg: SegmentSpec): FilterSegment {
  if (seg.header !== undefined) return { name: seg.name, header: seg.header, values: seg.values ?? [] };
  if (seg.endpoints !== undefined) return { name: seg.name, prefixes: seg.endpoints.map((e) => e.pathPrefix), values: seg.endpoints.map((e) => e.value) };
  const bounds = seg.requestSizeBytes ?? [];
  return { name: seg.name, bounds, values: sizeValues(bounds) };
}

/** Every value the filter can report for the dimension, "other" last. */
export function segmentValueNames(seg: SegmentSpec): string[] {
  return [...toFilterSegment(seg).values, "other"];
}

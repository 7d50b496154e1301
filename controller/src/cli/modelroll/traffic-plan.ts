// `modelroll traffic`'s flags as a TrafficOptions: every value checked, every error naming its flag. Pure.
import { parseDuration, type TrafficOptions } from "./plan.ts";
import { TRAFFIC_DEFAULTS, TRAFFIC_LIMITS } from "./traffic.ts";

const fail = (error: string) => ({ error });
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/i;

/** The traffic command's options, checked; every error names its flag. */
export function trafficPlan(
  o: Record<string, unknown>,
  env: Record<string, string | undefined>,
): { options: TrafficOptions; bodyFile: string | null } | { error: string } {
  const url = ((o.dataUrl as string | undefined) ?? env.MODELROLL_DATA_URL ?? TRAFFIC_DEFAULTS.url).replace(/\/+$/, "");
  if (!/^https?:\/\/[^/\s]+$/.test(url)) return fail(`--data-url: expected a base URL like ${TRAFFIC_DEFAULTS.url}, got '${url}'`);
  const path = o.path as string;
  if (!/^\/\S*$/.test(path)) return fail(`--path: expected a path starting with /, got '${path}'`);
  const rate = Number(o.rate);
  if (!Number.isFinite(rate) || rate <= 0 || rate > TRAFFIC_LIMITS.maxRate)
    return fail(`--rate: expected requests per second above 0 and at most ${TRAFFIC_LIMITS.maxRate}, got '${o.rate}'`);
  const users = Number(o.users);
  if (!Number.isInteger(users) || users < 1 || users > TRAFFIC_LIMITS.maxUsers)
    return fail(`--users: expected a whole number 1 to ${TRAFFIC_LIMITS.maxUsers}, got '${o.users}'`);
  let durationMs: number | null = null;
  if (o.untilStopped !== true) {
    durationMs = parseDuration(o.duration as string);
    if (durationMs === null || durationMs <= 0 || durationMs > TRAFFIC_LIMITS.maxDurationMs)
      return fail(`--duration: expected a duration like 30s, 5m or 1h (at most 24h), got '${o.duration}'`);
  }
  const headers: Record<string, string> = {};
  for (const h of (o.header as string[] | undefined) ?? []) {
    const at = h.indexOf(":");
    const name = at > 0 ? h.slice(0, at).trim() : "";
    if (!HEADER_NAME.test(name)) return fail(`--header: expected 'name: value', got '${h}'`);
    headers[name.toLowerCase()] = h.slice(at + 1).trim();
  }
  for (const flag of ["userHeader", "variantHeader"] as const) {
    if (!HEADER_NAME.test(o[flag] as string)) return fail(`--${flag === "userHeader" ? "user" : "variant"}-header: expected a header name, got '${o[flag]}'`);
  }
  const body = o.body as string;
  const bodyFile = body.startsWith("@") ? body.slice(1) : null;
  if (bodyFile === "") return fail("--body: expected @FILE with a file name");
  return {
    options: {
      ...TRAFFIC_DEFAULTS,
      url,
      path,
      rate,
      users,
      durationMs,
      method: o.get === true ? "GET" : "POST",
      body: bodyFile === null ? body : "",
      userHeader: (o.userHeader as string).toLowerCase(),
      variantHeader: (o.variantHeader as string).toLowerCase(),
      headers,
    },
    bodyFile,
  };
}

/** The Kubernetes API's error answers as one typed error: the HTTP status, the API's reason and its causes. */

/** One field the API refused (422 Invalid), e.g. `{ field: "spec.stages[0]", reason: "FieldValueInvalid", message }`. */
export interface KubeCause {
  field?: string;
  reason?: string;
  message?: string;
}

/**
 * status: the HTTP status (409 Conflict, 404 NotFound, 410 Gone, 422 Invalid, ...), or 0 when no answer came
 * (reason "Unreachable" or "Timeout"). reason: the Status object's reason ("Conflict", "AlreadyExists",
 * "NotFound", "Expired", "Gone", "Invalid", "Forbidden", ...).
 */
export class KubeError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly causes: KubeCause[];

  constructor(status: number, reason: string, message: string, causes: KubeCause[] = []) {
    super(message);
    this.name = "KubeError";
    this.status = status;
    this.reason = reason;
    this.causes = causes;
  }

  /** The object changed since it was read (resourceVersion), or a create found one of that name. */
  get isConflict(): boolean {
    return this.status === 409;
  }
  get isNotFound(): boolean {
    return this.status === 404;
  }
  /** A watch's resourceVersion is older than the server keeps: list again. */
  get isGone(): boolean {
    return this.status === 410;
  }
  /** No answer: the server is down, unreachable or too slow. */
  get isUnreachable(): boolean {
    return this.status === 0 || this.status === 503;
  }
}

interface StatusBody {
  kind?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { causes?: KubeCause[] };
}

const REASON_BY_STATUS: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  409: "Conflict",
  410: "Gone",
  415: "UnsupportedMediaType",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

/** The KubeError for an error answer: its Status object when the body is one, the HTTP status otherwise. */
export function statusError(status: number, text: string): KubeError {
  let body: StatusBody = {};
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed !== null && typeof parsed === "object") body = parsed as StatusBody;
  } catch {
    // Not JSON (a proxy's page): the status line and the text's start say what happened.
  }
  const code = body.code ?? status;
  const reason = body.reason || REASON_BY_STATUS[code] || "Unknown";
  const message = body.message ?? (text.slice(0, 200) || `HTTP ${code}`);
  return new KubeError(code, reason, message, body.details?.causes ?? []);
}

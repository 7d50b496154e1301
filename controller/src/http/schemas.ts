// Request and error schemas every route module shares: the rollout name in the path, If-Match, the optional
// body of a command, and the one error shape (http/error-handler.ts sends it).
import { Type } from "@sinclair/typebox";

export const RolloutNameParams = Type.Object({ name: Type.String({ maxLength: 253 }) });

/** Optional on every write to an existing rollout: the ETag (revision) it was read at. */
export const IfMatchHeaders = Type.Object({
  "if-match": Type.Optional(Type.String({ maxLength: 200, description: 'ETag from a previous read (e.g. "7"), or *; a mismatch is a 412.' })),
});

const Reason = Type.String({ minLength: 1, maxLength: 2000, description: "Why, for the record." });
/** The optional body of a command (rollback, pause, fail, ...): a POST without a body is fine. */
export const CommandBody = Type.Object(
  { reason: Type.Optional(Reason) },
  { additionalProperties: false, description: "Optional: a POST without a body is fine." },
);

export const ErrorBody = Type.Object({
  error: Type.String(),
  details: Type.Optional(Type.Array(Type.Object({ path: Type.String(), reason: Type.String() }))),
});

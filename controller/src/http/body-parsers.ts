import type { FastifyInstance } from "fastify";
import { LineCounter, parseDocument } from "yaml";

export const YAML_CONTENT_TYPES = ["application/yaml", "application/x-yaml", "text/yaml"];

/** A body that is not well-formed; the error handler adds the object the request was about. */
class BodySyntaxError extends Error {
  readonly statusCode = 400;
}

/** What a body may be sent as, for the 415 message. */
export const ACCEPTED_BODY_TYPES = "application/json or application/yaml";

/** A body in a type the API does not read; the error handler words the 415. */
export class UnsupportedBodyTypeError extends Error {
  readonly statusCode = 415;
  constructor(readonly contentType: string | undefined) {
    super(`unsupported content type ${contentType ?? "(none)"}`);
  }
}

export function registerBodyParsers(app: FastifyInstance): void {
  // Fastify reads text/plain bodies as strings, so JSON sent with curl's or a script's wrong content type
  // failed as "(root) must be object". Every type but JSON and YAML now ends in the catch-all below: an empty
  // body is no body (`curl -XPOST -d ''` on a command), anything else a 415 that says what to send instead.
  app.removeContentTypeParser("text/plain");
  app.addContentTypeParser("*", { parseAs: "string" }, (request, body, done) => {
    if (body.toString().trim() === "") return done(null, undefined);
    done(new UnsupportedBodyTypeError(request.headers["content-type"]), undefined);
  });

  // An empty JSON body means "no body": a rollback sent as `POST` with a JSON content type and nothing
  // else must not fail on a formality. Anything else goes to Fastify's parser (which guards __proto__).
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    const text = body.toString();
    if (text.trim() === "") return done(null, undefined);
    return parseJson(request, text, done);
  });

  // Specs are written by hand, so YAML is accepted wherever JSON is.
  app.addContentTypeParser(YAML_CONTENT_TYPES, { parseAs: "string" }, (_request, body, done) => {
    try {
      done(null, parseYaml(body.toString()));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
}

export function parseYaml(text: string): unknown {
  const lineCounter = new LineCounter();
  // Duplicate keys are an error: with "last one wins" a pasted block could silently change a weight.
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const [first] = document.errors;
  if (first) {
    const { line, col } = lineCounter.linePos(first.pos[0]);
    const message = first.message.split("\n")[0];
    throw new BodySyntaxError(`YAML syntax error at line ${Math.max(line, 1)}, column ${col}: ${message}`);
  }
  return document.toJS({ maxAliasCount: 100 });
}

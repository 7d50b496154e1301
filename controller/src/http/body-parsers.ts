import type { FastifyInstance } from "fastify";
import { checkJsonText, checkValueShape, decodeUtf8, parseYamlBounded, TextShapeError } from "../structured-text.ts";

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
  // Bodies are read as bytes: text that is not UTF-8 is refused (naming the field), not silently replaced.
  // Nesting, entries and values are bounded before and after parsing (structured-text.ts says why).
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (request, body, done) => {
    let text: string;
    try {
      text = decodeUtf8(body as Buffer);
      if (text.trim() === "") return done(null, undefined);
      checkJsonText(text);
    } catch (error) {
      return done(bodyError(error, "JSON"), undefined);
    }
    return parseJson(request, text, (error, value) => {
      if (error) return done(error, undefined);
      try {
        checkValueShape(value);
      } catch (shape) {
        return done(bodyError(shape, "JSON"), undefined);
      }
      done(null, value);
    });
  });

  // Specs are written by hand, so YAML is accepted wherever JSON is.
  app.addContentTypeParser(YAML_CONTENT_TYPES, { parseAs: "buffer" }, (_request, body, done) => {
    try {
      done(null, parseYaml(decodeUtf8(body as Buffer)));
    } catch (error) {
      done(bodyError(error, "YAML"), undefined);
    }
  });
}

/** A bound crossed or a syntax error as a 400 with the reason; anything else stays what it was. */
function bodyError(error: unknown, format: "JSON" | "YAML"): Error {
  if (error instanceof TextShapeError) return new BodySyntaxError(`${format} ${error.message.startsWith("syntax error") ? "" : "body: "}${error.message}`);
  return error as Error;
}

/** A YAML body's value. Duplicate keys are an error: with "last one wins" a pasted block could silently change a weight. */
function parseYaml(text: string): unknown {
  const value = parseYamlBounded(text);
  checkValueShape(value);
  return value;
}

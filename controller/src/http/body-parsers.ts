import type { FastifyInstance } from "fastify";
import { LineCounter, parseDocument } from "yaml";

export const YAML_CONTENT_TYPES = ["application/yaml", "application/x-yaml", "text/yaml"];

/** A body that is not well-formed; the error handler adds the object the request was about. */
export class BodySyntaxError extends Error {
  readonly statusCode = 400;
}

export function registerBodyParsers(app: FastifyInstance): void {
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

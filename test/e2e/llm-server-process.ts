// A demo LLM server in its own process (started by llm-harness.ts): its timers then keep time however busy the
// test process is with its clients. argv: version, behaviour JSON. Prints {"port": N} once listening.
import { startLlmServer } from "../../controller/src/demo/llm-model.ts";

const [version = "v1", behavior = "{}"] = process.argv.slice(2);
const server = await startLlmServer({ version, behavior: JSON.parse(behavior) });
process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
process.on("SIGTERM", () => {
  server.close().then(() => process.exit(0));
});

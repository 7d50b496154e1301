// Replaces AssemblyScript's default abort (which imports env.abort, a function Envoy does not offer).
// An abort still traps the VM, so the filter code is written to never reach one; this only makes
// the reason visible in Envoy's log when it does.
import { log, LogLevel } from "./host";

export function abortToProxyLog(message: string | null, fileName: string | null, line: u32, column: u32): void {
  let text = "modelroll: abort";
  if (message !== null) text += ": " + message;
  if (fileName !== null) text += " at " + fileName + ":" + line.toString() + ":" + column.toString();
  log(LogLevel.Critical, text);
  unreachable();
}

// The answer the CLI gives a server's authentication challenge (UIA) when replacing cross-signing
// keys: the account password when it has one, and, for servers that delegate login to OAuth 2.0
// (Synapse with MAS: the `m.oauth` stage), the approval page printed on stderr, the command
// waiting for Enter once the user approved there. stdout keeps its one JSON line.
import type { UiaAuth, UiaOAuthStage } from "../../index.ts";
import { CliError } from "../errors.ts";
import type { CommandIo } from "./io.ts";

export function uiaAuthOf(io: CommandIo, password: string | undefined): UiaAuth {
  const oauth = async (stage: UiaOAuthStage): Promise<void> => {
    io.err(`The server asks you to approve this in a browser: open ${stage.url}`);
    io.err("then press Enter here.");
    const line = io.readLine === undefined ? undefined : await io.readLine();
    if (line === undefined)
      throw new CliError("NOT_APPROVED", `not approved in the browser (${stage.type}): stdin ended`);
  };
  return password === undefined ? { oauth } : { password, oauth };
}

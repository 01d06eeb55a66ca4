// The CLI's answer to an `m.oauth` challenge (servers with MAS): the approval page on stderr, Enter
// on stdin once approved; stdin ending means not approved. The password, when given, goes too.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { withUia } from "../../client/uia.ts";
import { MatrixError } from "../../index.ts";
import { CliError } from "../errors.ts";
import type { CommandIo } from "./io.ts";
import { uiaAuthOf } from "./uia.ts";

const URL = "https://account.example.org/reset-cross-signing";

function io(lines: (string | undefined)[]): CommandIo & { errs: string[]; outs: string[] } {
  const errs: string[] = [];
  const outs: string[] = [];
  return {
    errs,
    outs,
    out: (t) => void outs.push(t),
    err: (t) => void errs.push(t),
    readLine: async () => lines.shift(),
  };
}

/** A server asking for an approval in the browser, then taking the request once the session comes back. */
function oauthServer() {
  const sent: (Record<string, unknown> | undefined)[] = [];
  const request = async (auth: Record<string, unknown> | undefined) => {
    sent.push(auth);
    if (auth?.session === "s1") return "uploaded";
    throw new MatrixError(401, {
      flows: [{ stages: ["m.oauth"] }],
      params: { "m.oauth": { url: URL } },
      session: "s1",
    });
  };
  return { sent, request };
}

describe("keyroom's answer to an m.oauth challenge", () => {
  it("prints the approval page on stderr, waits for Enter, then the request goes with the session", async () => {
    const term = io([""]);
    const server = oauthServer();
    const result = await withUia("@a:x", uiaAuthOf(term, undefined), "reset", server.request);
    assert.equal(result, "uploaded");
    assert.ok(term.errs.some((l) => l.includes(URL)));
    assert.deepEqual(term.outs, []); // stdout keeps its one JSON line
    assert.deepEqual(server.sent, [undefined, { session: "s1" }]);
  });

  it("stdin ending before Enter: not approved (NOT_APPROVED), nothing sent again", async () => {
    const term = io([]);
    const server = oauthServer();
    await assert.rejects(
      withUia("@a:x", uiaAuthOf(term, undefined), "reset", server.request),
      (e) => e instanceof CliError && e.code === "NOT_APPROVED",
    );
    assert.deepEqual(server.sent, [undefined]);
  });

  it("with a password, a password stage is answered with it", async () => {
    const sent: (Record<string, unknown> | undefined)[] = [];
    await withUia("@a:x", uiaAuthOf(io([]), "pw"), "reset", async (auth) => {
      sent.push(auth);
      if (auth !== undefined) return "ok";
      throw new MatrixError(401, { flows: [{ stages: ["m.login.password"] }], session: "s2" });
    });
    assert.equal(sent[1]?.password, "pw");
  });
});

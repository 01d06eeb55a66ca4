// `getLoginFlows` against the devserver's `GET /login` (it offers no SSO: the SSO helpers are
// tested against a fake fetch in src/client/session/sso.test.ts).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MatrixClient } from "../../src/client/index.ts";
import { startTestDevServer, type TestDevServer } from "../support/devserver.ts";

describe("login flows (devserver)", () => {
  let hs: TestDevServer;
  before(async () => {
    hs = await startTestDevServer();
  });
  after(async () => {
    await hs.close();
  });

  it("lists the password and appservice flows, no session needed", async () => {
    const client = new MatrixClient({ homeserverUrl: hs.baseUrl });
    const flows = await client.getLoginFlows();
    assert.deepEqual(
      flows.map((f) => f.type),
      ["m.login.password", "m.login.application_service"],
    );
    assert.ok(flows.every((f) => f.identityProviders.length === 0 && !f.getLoginToken));
    assert.equal(client.isLoggedIn, false);
  });
});

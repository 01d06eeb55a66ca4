// A federated server sets its events' `origin_server_ts` as it likes. The replay guard records it,
// and the store takes only non-negative safe integers: before, a negative timestamp made the save
// holding that record fail, and with it every later sync step (the record stayed pending).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bobTrackingAlice, joined } from "../test-support/fake-homeserver.ts";

const ROOM = "!room:example.org";

describe("hostile origin_server_ts", () => {
  for (const ts of [-5, -0.5, 1.5, 2 ** 60, Number.NaN]) {
    it(`decrypts an event stamped ${ts} and keeps syncing`, async () => {
      const { alice, bob } = await bobTrackingAlice();
      const event = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "stamped");
      await bob.sync();
      const decrypted = await bob.machine.decryptRoomEvent({ ...event, origin_server_ts: ts }, ROOM);
      assert.equal(decrypted.content.body, "stamped");
      await bob.sync();
      await bob.sync();
      const again = await alice.sendMessage(ROOM, joined("@alice:x", "@bob:x"), "after");
      await bob.sync();
      assert.equal((await bob.machine.decryptRoomEvent(again, ROOM)).content.body, "after");
    });
  }
});

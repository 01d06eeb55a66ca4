/**
 * A session's creator's own share that arrived while we held an imported copy naming someone else
 * waits as a rival (see reshare-takeover.test.ts). It is kept in the crypto store with the step
 * that received it: a restart between its arrival and the creator's first event must not lose it,
 * on every back end. Once the session settles (the rival promoted, or an event decrypted under the
 * imported copy's claim), it is deleted from the store.
 */
import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { randomBytes } from "../../crypto/primitives/index.ts";
import { type CryptoStore, IndexedDbCryptoStore, SqliteCryptoStore } from "../../store/index.ts";
import { megolmEventIn } from "../test-support/fake-homeserver.ts";
import { aliceMemberAndBob, importNaming, ROOM, shareToBob } from "../test-support/reshare.ts";

const directory = mkdtempSync(join(tmpdir(), "keyroom-rivals-"));
after(() => rmSync(directory, { recursive: true, force: true }));
let stores = 0;

/** For each back end, a function making a fresh location for Bob's store; it opens that one on every call. */
const BACK_ENDS: { name: string; location: () => (() => Promise<CryptoStore>) | undefined }[] = [
  { name: "memory", location: () => undefined },
  {
    name: "SQLite",
    location: () => {
      const dir = mkdtempSync(join(directory, "db-"));
      const key = randomBytes(32);
      return () => SqliteCryptoStore.open({ userId: "@bob:x", deviceId: "B", directory: dir, key });
    },
  },
  {
    name: "IndexedDB",
    location: () => {
      const name = `keyroom-rivals-${process.pid}-${++stores}`;
      const key = randomBytes(32);
      return () => IndexedDbCryptoStore.open({ userId: "@bob:x", deviceId: "B", name, key });
    },
  },
];

describe("a rival room key across a restart", () => {
  for (const { name, location } of BACK_ENDS) {
    it(`is still promoted by its sender's first event after a restart, then deleted (${name})`, async () => {
      const {
        alice,
        bob,
        member: mallory,
      } = await aliceMemberAndBob({ userId: "@mallory:x", deviceId: "M" }, location());
      try {
        const session = OutboundGroupSession.create();
        // An export naming Mallory as the creator of Alice's session; then Alice's own share.
        await importNaming(bob, mallory, session);
        await shareToBob(alice, session);
        await bob.sync();
        assert.deepEqual(
          (await bob.store.getRivalRoomKeys()).map((r) => [r.sessionId, r.senderKey]),
          [[session.sessionId, alice.machine.identityKeys.curve25519]],
        );

        await bob.restart();
        const one = await bob.machine.decryptRoomEvent(
          megolmEventIn(session, ROOM, "@alice:x", "A", "one"),
          ROOM,
        );
        assert.deepEqual([one.sender, one.senderDevice, one.content.body], ["@alice:x", "A", "one"]);
        assert.equal(one.senderCurve25519, alice.machine.identityKeys.curve25519);
        // Settled: the rival is gone, and the session stays Alice's after another restart.
        assert.deepEqual(await bob.store.getRivalRoomKeys(), []);
        await bob.restart();
        const two = await bob.machine.decryptRoomEvent(
          megolmEventIn(session, ROOM, "@alice:x", "A", "two"),
          ROOM,
        );
        assert.deepEqual([two.senderDevice, two.forwarded], ["A", false]);
      } finally {
        await bob.machine.close();
        await bob.store.close();
      }
    });

    it(`is deleted once an event decrypted under the imported claim, and never promoted after a restart (${name})`, async () => {
      const {
        alice,
        bob,
        member: charlie,
      } = await aliceMemberAndBob({ userId: "@charlie:x", deviceId: "C" }, location());
      try {
        const session = OutboundGroupSession.create();
        // The export names Alice, rightly; Charlie shares her session to Bob as his own.
        await importNaming(bob, alice, session);
        await shareToBob(charlie, session);
        await bob.sync();
        assert.equal((await bob.store.getRivalRoomKeys()).length, 1);
        await bob.restart();
        const one = megolmEventIn(session, ROOM, "@alice:x", "A", "one");
        assert.equal((await bob.machine.decryptRoomEvent(one, ROOM)).senderDevice, "A");
        assert.deepEqual(await bob.store.getRivalRoomKeys(), []);
        // Charlie's copy of her next event, after a restart: not his.
        await bob.restart();
        const two = megolmEventIn(session, ROOM, "@alice:x", "A", "two");
        const copy = {
          ...two,
          event_id: "$copy",
          sender: "@charlie:x",
          content: { ...two.content, device_id: "C" },
        };
        const outcome = await bob.machine.tryDecryptRoomEvent(copy, ROOM);
        assert.equal(outcome.ok ? outcome.event.sender : outcome.error.code, "MISMATCHED_SENDER");
        assert.equal((await bob.machine.decryptRoomEvent(two, ROOM)).senderDevice, "A");
      } finally {
        await bob.machine.close();
        await bob.store.close();
      }
    });
  }
});

/**
 * The records anyone can add, bounded in every back end alike: withheld notices (sent in the
 * clear, naming made-up sessions) and Olm message hashes (sessions started on our fallback key
 * from made-up identity keys). Beyond the bound the first stored go first; a record saved again
 * keeps its place; a save that fails evicts nothing; the order survives a reopen.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import type { WithheldRecord } from "../records.ts";
import { MAX_STORED_OLM_MESSAGE_HASHES, MAX_STORED_WITHHELD } from "../store.ts";
import { ALICE, BOB, DEVICE, ROOM_A } from "./samples.ts";
import type { ConformanceSuite } from "./target.ts";

const notice = (sessionId: string, code = "m.unverified"): WithheldRecord => ({
  roomId: ROOM_A,
  sessionId,
  code,
  sender: BOB,
});

export function boundTests({ withStore }: ConformanceSuite): void {
  it(`keeps at most MAX_STORED_WITHHELD (${MAX_STORED_WITHHELD}) withheld notices, the first stored first out`, () =>
    withStore(async (s, fixture) => {
      const held = async (id: string) => (await s.getWithheld(ROOM_A, id)) !== undefined;
      await s.saveChanges({
        withheld: Array.from({ length: MAX_STORED_WITHHELD }, (_, i) => notice(`w${i}`)),
      });
      assert.ok((await held("w0")) && (await held(`w${MAX_STORED_WITHHELD - 1}`)), "the bound itself fits");
      // Saved again, w0 takes the new value but keeps its place: it is still the first to go.
      await s.saveChanges({ withheld: [notice("w0", "m.blacklisted")] });
      assert.equal((await s.getWithheld(ROOM_A, "w0"))?.code, "m.blacklisted");
      await s.saveChanges({ withheld: [notice("x0")] });
      assert.deepEqual(
        [await held("w0"), await held("w1"), await held("x0")],
        [false, true, true],
        "one new notice pushes out exactly the oldest",
      );
      // Two new in one save push out two; a session listed twice in a save is one notice.
      await s.saveChanges({ withheld: [notice("x1"), notice("x2"), notice("x2", "m.no_olm")] });
      assert.deepEqual(
        [await held("w1"), await held("w2"), await held("w3"), await s.getWithheld(ROOM_A, "x2")],
        [false, false, true, notice("x2", "m.no_olm")],
      );
      // A save that fails evicts nothing.
      await assert.rejects(s.saveChanges({ withheld: [notice("x3")], customValues: { "bad\uD800": 1 } }));
      assert.deepEqual([await held("w3"), await held("x3")], [true, false]);
      // The order survives a reopen: the next new notice still pushes out w3, then w4.
      await s.close();
      const reopened = await fixture.open({ userId: ALICE, deviceId: DEVICE });
      try {
        await reopened.saveChanges({ withheld: [notice("x3")] });
        const after = async (id: string) => (await reopened.getWithheld(ROOM_A, id)) !== undefined;
        assert.deepEqual(
          [
            await after("w3"),
            await after("w4"),
            await after("x3"),
            await after(`w${MAX_STORED_WITHHELD - 1}`),
          ],
          [false, true, true, true],
        );
      } finally {
        await reopened.close();
      }
    }));

  it(`keeps at most MAX_STORED_OLM_MESSAGE_HASHES (${MAX_STORED_OLM_MESSAGE_HASHES}) Olm message hashes, the first stored first out`, () =>
    withStore(async (s) => {
      const hash = (i: number) => ({ senderKey: `curve${i % 7}`, hash: `h${i}` });
      const known = (i: number) => s.isOlmMessageKnown(`curve${i % 7}`, `h${i}`);
      await s.saveChanges({
        olmMessageHashes: Array.from({ length: MAX_STORED_OLM_MESSAGE_HASHES }, (_, i) => hash(i)),
      });
      assert.ok(
        (await known(0)) && (await known(MAX_STORED_OLM_MESSAGE_HASHES - 1)),
        "the bound itself fits",
      );
      // A hash saved again changes nothing, not even its place.
      const next = MAX_STORED_OLM_MESSAGE_HASHES;
      await s.saveChanges({ olmMessageHashes: [hash(0), hash(next), hash(next)] });
      assert.deepEqual([await known(0), await known(1), await known(next)], [false, true, true]);
      await s.saveChanges({ olmMessageHashes: [hash(next + 1), hash(next + 2)] });
      assert.deepEqual([await known(1), await known(2), await known(3)], [false, false, true]);
    }));
}

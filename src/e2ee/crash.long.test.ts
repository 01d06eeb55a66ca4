/**
 * Kill loop: Bob's process dies at random points (a save that fails, then a restart on the same
 * store) while he syncs room keys from several senders and rooms. In the end every message
 * decrypts, and the server handed out exactly one of his one-time keys per Olm session.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { type CryptoChanges, type CryptoStore, MemoryCryptoStore, MemoryStoreData } from "../store/index.ts";
import type { EncryptedRoomEvent } from "./decryption/room-events.ts";
import { OlmMachine } from "./machine.ts";
import { FakeHomeserver, joined, TestClient } from "./test-support/fake-homeserver.ts";

describe("kill loop", () => {
  it("loses no key and reuses no one-time key, wherever the process dies", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }), async (crashes) => {
        const hs = new FakeHomeserver();
        const senders = [
          await TestClient.create(hs, { userId: "@s1:x", deviceId: "S1" }),
          await TestClient.create(hs, { userId: "@s2:x", deviceId: "S2" }),
        ];
        const data = new MemoryStoreData();
        let crashNext = false;
        let saves = 0;
        const open = async (): Promise<{ machine: OlmMachine; store: CryptoStore }> => {
          const inner = await MemoryCryptoStore.open({ userId: "@bob:x", deviceId: "B", data });
          const store = new Proxy(inner, {
            get(target, prop, receiver) {
              if (prop === "saveChanges") {
                return async (changes: CryptoChanges) => {
                  if (crashNext) {
                    crashNext = false;
                    throw new Error("killed");
                  }
                  saves++;
                  return target.saveChanges(changes);
                };
              }
              const value = Reflect.get(target, prop, receiver);
              return typeof value === "function" ? value.bind(target) : value;
            },
          });
          return { machine: await OlmMachine.open({ userId: "@bob:x", deviceId: "B", store }), store };
        };
        let bob = await open();
        hs.device("@bob:x", "B");
        let step = 0;
        /** Runs one step of Bob's; on a crash, restarts him and runs it again. */
        const run = async <T>(fn: (m: OlmMachine) => Promise<T>): Promise<T> => {
          crashNext = crashes[step++ % crashes.length] ?? false;
          try {
            return await fn(bob.machine);
          } catch (e) {
            if (!(e instanceof Error) || e.message !== "killed") throw e;
            await bob.machine.close().catch(() => undefined);
            await bob.store.close();
            bob = await open();
            return fn(bob.machine);
          }
        };
        const flush = async () => {
          for (let i = 0; i < 6; i++) {
            const requests = await run((m) => m.outgoingRequests());
            if (requests.length === 0) return;
            for (const r of requests) {
              const response = hs.handle("@bob:x", "B", r);
              await run((m) => m.markRequestAsSent(r, response)).catch((e) => {
                // After a restart the request may be unknown: it is offered again with a new ID.
                if ((e as { code?: string }).code !== "UNKNOWN_REQUEST") throw e;
              });
            }
          }
        };
        await flush();
        const sent: { event: EncryptedRoomEvent; roomId: string; body: string }[] = [];
        for (let round = 0; round < 3; round++) {
          for (const [i, sender] of senders.entries()) {
            const roomId = `!room${(round + i) % 2}:x`;
            const body = `r${round} from ${sender.userId}`;
            const event = await sender.sendMessage(roomId, joined(sender.userId, "@bob:x"), body);
            sent.push({ event, roomId, body });
          }
          const sync = hs.syncFor("@bob:x", "B");
          await run((m) => m.receiveSyncChanges({ ...sync, nextBatch: `b${round}` }));
          await flush();
        }
        for (const { event, roomId, body } of sent) {
          const decrypted = await run((m) => m.decryptRoomEvent(event, roomId));
          assert.equal(decrypted.content.body, body);
        }
        // No claimed one-time key was uploaded again: the fake server would have thrown. (Senders
        // may have used the fallback key if a crash delayed Bob's one-time key upload.)
        assert.ok(saves > 0);
        await bob.machine.close();
      }),
      { numRuns: 25 },
    );
  });
});

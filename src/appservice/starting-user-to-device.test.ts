// The to-device messages for a virtual user that came while it started and are not Olm-encrypted
// (a verification request, an app's own event) reach the handlers its caller puts on the client as
// soon as `user()` gives it: each as `toDevice`, the verification request also as
// `verification.request` (its verification service takes it only then), in order with the room
// events of their transaction and before what comes after its start. Scripted homeserver,
// encryption on.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { VerificationRequest } from "../client/index.ts";
import { ME, message, registrationOf, scripted, startingMe, txnOf } from "./test-support/scripted-start.ts";
import { parseTransaction } from "./transaction.ts";

const REGISTRATION = registrationOf("todevice");
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** A to-device message from Alice's device to the user's. */
const fromAlice = (type: string, content: Record<string, unknown>) => ({
  type,
  sender: "@alice:hs",
  to_user_id: ME,
  to_device_id: "DEV",
  content,
});

describe("to-device messages held for a starting virtual user", () => {
  it("reach the handlers put on once user() gave the client: a verification request too", async () => {
    const hs = scripted();
    const { as, starting } = await startingMe(hs, REGISTRATION, { logger: quiet });
    try {
      const request = fromAlice("m.key.verification.request", {
        from_device: "ALICEDEV",
        methods: ["m.sas.v1"],
        timestamp: Date.now(),
        transaction_id: "flow1",
      });
      const ping = fromAlice("org.example.ping", { n: 1 });
      await as.handleTransaction(
        "t1",
        parseTransaction({ events: [message("$during")], to_device: [request, ping] }),
      );

      hs.release();
      const client = await starting;
      const seen: string[] = [];
      client.on("toDevice", (ev) => {
        seen.push(ev.type);
      });
      client.on("room.event", (_room, ev) => {
        seen.push(ev.eventId);
      });
      const requested = new Promise<VerificationRequest>((resolve) => {
        client.on("verification.request", resolve);
      });
      assert.deepEqual(client.getVerificationRequests(), [], "not taken before its caller had the client");

      await as.handleTransaction("t2", txnOf("$after"));
      assert.deepEqual(seen, ["m.key.verification.request", "org.example.ping", "$during", "$after"]);
      const incoming = await requested;
      assert.equal(incoming.otherUserId, "@alice:hs");
      assert.equal(incoming.otherDeviceId, "ALICEDEV");
      assert.equal(incoming.incoming, true);
    } finally {
      hs.release();
      await as.close();
    }
  });
});

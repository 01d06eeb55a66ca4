// A session held without a valid Ed25519 claim (imported from a file or a backup whose
// `sender_claimed_keys` lacked one; stored with "") goes up with `sender_claimed_keys: {}`, as
// export files and history bundles carry it. It used to go up as `{ "ed25519": "" }`, a record our
// own restore refuses (the claim is no key) and matrix-rust-sdk fails to read: lost to both.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InboundGroupSession, OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { PkDecryption } from "../../crypto/pk/index.ts";
import { MemoryCryptoStore } from "../../store/index.ts";
import { OlmMachine } from "../machine.ts";

async function machineFor(deviceId: string): Promise<OlmMachine> {
  const store = await MemoryCryptoStore.open({ userId: "@a:example.org", deviceId });
  return OlmMachine.open({ userId: "@a:example.org", deviceId, store });
}

describe("a session held without an Ed25519 claim", () => {
  it("is backed up in a form a restore takes", async () => {
    const alice = await machineFor("A1");
    const sender = await machineFor("S");
    const session = InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey());
    const imported = await alice.importRoomKeys([
      {
        algorithm: "m.megolm.v1.aes-sha2",
        room_id: "!r:example.org",
        sender_key: sender.identityKeys.curve25519,
        session_id: session.sessionId,
        session_key: session.exportAtFirstKnownIndex(),
        sender_claimed_keys: {},
        forwarding_curve25519_key_chain: [],
      },
    ]);
    assert.equal(imported.imported, 1);
    const { request, privateKey } = await alice.backup.prepareVersion();
    await alice.backup.versionCreated(request.id, { version: "1" });
    const batch = await alice.backup.nextUpload();
    assert.ok(batch);
    await alice.backup.uploaded(batch.id);

    const record = batch.body.rooms["!r:example.org"]?.sessions[session.sessionId];
    assert.ok(record);
    const plaintext = JSON.parse(PkDecryption.fromPrivateKey(privateKey).decryptString(record.session_data));
    assert.deepEqual(plaintext.sender_claimed_keys, {});

    const fresh = await machineFor("A2");
    const result = await fresh.backup.restore(JSON.parse(JSON.stringify(batch.body)), {
      version: "1",
      privateKey,
    });
    assert.deepEqual([result.imported, result.total, result.failed], [1, 1, 0]);
  });
});

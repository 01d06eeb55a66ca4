// A server that swaps the public key of the backup version in use, keeping its version number:
// room keys must not go up under a key the server chose (it could read them), whether the
// swapped auth_data drops our signatures or keeps them (then they no longer check out).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InboundGroupSession, OutboundGroupSession } from "../../crypto/megolm/index.ts";
import { PkDecryption } from "../../crypto/pk/index.ts";
import { MemoryCryptoStore } from "../../store/index.ts";
import { OlmMachine } from "../machine.ts";

const ALICE = "@alice:example.org";

async function machineFor(userId: string, deviceId: string): Promise<OlmMachine> {
  const store = await MemoryCryptoStore.open({ userId, deviceId });
  return OlmMachine.open({ userId, deviceId, store });
}

/** One fresh room key held by `machine` (sent by someone else), not backed up yet. */
async function oneSession(machine: OlmMachine): Promise<void> {
  const session = InboundGroupSession.fromSessionKey(OutboundGroupSession.create().sessionKey());
  const sender = PkDecryption.create().publicKey;
  await machine.importRoomKeys([
    {
      algorithm: "m.megolm.v1.aes-sha2",
      room_id: "!r:example.org",
      sender_key: sender,
      session_id: session.sessionId,
      session_key: session.exportAtFirstKnownIndex(),
      sender_claimed_keys: { ed25519: sender },
      forwarding_curve25519_key_chain: [],
    },
  ]);
}

describe("key backup: the server swaps the version's public key in place", () => {
  for (const keepSignatures of [false, true]) {
    it(`same version, another public key${keepSignatures ? ", our signatures kept" : ""}: not trusted, nothing uploaded`, async () => {
      const machine = await machineFor(ALICE, "ALICE1");
      const { request } = await machine.backup.prepareVersion();
      const authData = request.body.auth_data as Record<string, unknown>;
      await machine.backup.versionCreated(request.id, { version: "1" });
      await oneSession(machine);
      const first = await machine.backup.nextUpload();
      assert.ok(first, "the genuine version is uploaded to");
      await machine.backup.uploaded(first.id);

      const attacker = PkDecryption.create();
      const swapped = {
        version: "1",
        algorithm: "m.megolm_backup.v1.curve25519-aes-sha2",
        auth_data: {
          public_key: attacker.publicKey,
          ...(keepSignatures ? { signatures: authData.signatures } : {}),
        },
      };
      const check = await machine.backup.checkVersion(swapped);
      assert.equal(check.kind, "same");
      assert.equal(check.kind === "same" && check.trust.trusted, false);
      assert.equal(check.kind === "same" && check.trust.forged, keepSignatures);
      await oneSession(machine);
      assert.equal(await machine.backup.nextUpload(), undefined);
      const status = await machine.backup.status();
      assert.deepEqual([status.trusted, status.uploading, status.hasKey], [false, false, false]);
      // The genuine auth_data back (the key we hold is its key): uploads resume.
      const back = await machine.backup.checkVersion({
        version: "1",
        algorithm: "m.megolm_backup.v1.curve25519-aes-sha2",
        auth_data: authData,
      });
      assert.equal(back.kind === "same" && back.trust.trusted, true);
      assert.ok(await machine.backup.nextUpload());
    });
  }
});

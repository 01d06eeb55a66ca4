// The kill loop's invariants fire on the failures they exist for (fed synthetic records), so a
// passing kill loop means something.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  checkBackup,
  checkClaims,
  checkDecryptions,
  checkIdentity,
  checkNoErrors,
  checkStoredKeys,
  checkUploads,
  type DeviceRef,
  type RunLine,
} from "./checks.ts";
import type { KeyExchange } from "./recording-proxy.ts";

const victim: DeviceRef = { userId: "@v:localhost", deviceId: "VDEV" };
const tokens = new Map<string, DeviceRef>([
  ["tv", victim],
  ["tp", { userId: "@p:localhost", deviceId: "PDEV" }],
]);
const otk = (key: string, fallback = false) => ({
  key,
  signatures: {},
  ...(fallback ? { fallback: true } : {}),
});
const upload = (keys: Record<string, string>, token = "tv", status = 200): KeyExchange => ({
  kind: "upload",
  url: "/_matrix/client/v3/keys/upload",
  token,
  status,
  request: { one_time_keys: Object.fromEntries(Object.entries(keys).map(([id, k]) => [id, otk(k)])) },
  response: status === 200 ? { one_time_key_counts: {} } : { errcode: "M_INVALID_PARAM", error: "exists" },
});
const claim = (got: Record<string, ReturnType<typeof otk>>): KeyExchange => ({
  kind: "claim",
  url: "/_matrix/client/v3/keys/claim",
  token: "tp",
  status: 200,
  request: { one_time_keys: { [victim.userId]: { [victim.deviceId]: "signed_curve25519" } } },
  response: { one_time_keys: Object.keys(got).length ? { [victim.userId]: { [victim.deviceId]: got } } : {} },
});

const backupUpload = (version: string, status = 200): KeyExchange => ({
  kind: "backup_upload",
  url: `/_matrix/client/v3/room_keys/keys?version=${version}`,
  token: "tv",
  status,
  request: { rooms: {} },
  response: {},
});

describe("kill-loop checks", () => {
  it("backup: one version, uploads to it, every held key backed up at least as well", () => {
    const final = (sessions: string[], backedUp = sessions.length): RunLine => ({
      t: "backup-final",
      version: "1",
      backedUp,
      total: sessions.length,
      sessions,
      run: -1,
    });
    const server = {
      versions: ["1"],
      keys: new Map([
        [
          "1",
          new Map([
            ["!r|s1", 0],
            ["!r|s2", 3],
          ]),
        ],
      ]),
    };
    const ok = checkBackup([final(["!r|s1|0", "!r|s2|5"])], [backupUpload("1")], tokens, victim, server);
    assert.deepEqual(ok, { problems: [], uploads: 1, sessions: 2 });
    const bad = checkBackup(
      [final(["!r|s1|0", "!r|s2|2", "!r|s3|0"], 2)],
      [backupUpload("1"), backupUpload("2", 403)],
      tokens,
      victim,
      { ...server, versions: ["1", "2"] },
    );
    assert.equal(bad.problems.length, 6, bad.problems.join("\n"));
    assert.match(bad.problems.join("\n"), /2 backup versions/);
    assert.match(bad.problems.join("\n"), /went to version 2/);
    assert.match(bad.problems.join("\n"), /refused with 403/);
    assert.match(bad.problems.join("\n"), /1 of 3 room keys not marked/);
    assert.match(bad.problems.join("\n"), /s2 is in the backup from index 3/);
    assert.match(bad.problems.join("\n"), /s3 of !r is not in the backup/);
    assert.deepEqual(checkBackup([], [], tokens, victim, server).problems, [
      "the final run reported no backup state",
    ]);
  });

  it("identity: a changed device or key after the first ready is reported", () => {
    const ok: RunLine[] = [
      { t: "ready", deviceId: "D", ed25519: "k", resumed: false, run: 0 },
      { t: "ready", deviceId: "D", ed25519: "k", resumed: true, run: 1 },
    ];
    assert.deepEqual(checkIdentity(ok), []);
    assert.equal(
      checkIdentity([...ok, { t: "ready", deviceId: "D", ed25519: "k2", resumed: true, run: 2 }]).length,
      1,
    );
    assert.deepEqual(checkIdentity([]), ["the victim never became ready"]);
  });

  it("decryptions: a lost key, a final undecryptable event, two different bodies are reported", () => {
    const expected = new Map([
      ["$a", "A"],
      ["$b", "B"],
    ]);
    const lines: RunLine[] = [
      { t: "dec", eventId: "$a", sender: "@p", body: "A", via: "sync", run: 0 },
      { t: "dec", eventId: "$a", sender: "@p", body: "A", via: "history", run: -1 },
      { t: "dec", eventId: "$b", sender: "@p", body: "B", via: "history", run: -1 },
    ];
    assert.deepEqual(checkDecryptions(lines, expected), []);
    const lost = checkDecryptions(lines.slice(0, 2), expected);
    assert.equal(lost.length, 1);
    assert.match(lost[0] ?? "", /\$b .*room key lost/);
    const differently: RunLine[] = [
      ...lines,
      { t: "dec", eventId: "$c", sender: "@p", body: "x", via: "sync", run: 1 },
      { t: "dec", eventId: "$c", sender: "@p", body: "y", via: "history", run: -1 },
    ];
    const twoWays = checkDecryptions(differently, expected);
    assert.equal(twoWays.length, 1);
    assert.match(twoWays[0] ?? "", /decrypted differently/);
    const wrong = checkDecryptions(
      [
        ...lines.slice(0, 2),
        { t: "dec", eventId: "$b", sender: "@p", body: "forged", via: "history", run: -1 },
      ],
      expected,
    );
    assert.equal(wrong.filter((p) => /wrong body/.test(p)).length, 1);
    const undec = checkDecryptions(
      [...lines, { t: "undec", eventId: "$z", code: "UNKNOWN_SESSION", via: "history", run: -1 }],
      expected,
    );
    assert.equal(undec.length, 1);
    assert.match(undec[0] ?? "", /^\$z undecryptable in the final run: session \? .*UNKNOWN_SESSION/);
  });

  it("says which key a lost message needs and how it went missing", () => {
    const expected = new Map([["$b", "b"]]);
    const undec = (stored: boolean): RunLine => ({
      t: "undec",
      eventId: "$b",
      code: "UNKNOWN_SESSION",
      via: "history",
      sessionId: "SESS",
      senderKey: "CURVE",
      stored,
      run: -1,
    });
    const [lost] = checkDecryptions([undec(false)], expected);
    assert.match(
      lost ?? "",
      /\$b \(b\) .*room key lost; session SESS from sender key CURVE \(UNKNOWN_SESSION\)/,
    );
    assert.match(lost ?? "", /delivered, then lost/);
    const [queued] = checkDecryptions([undec(false)], expected, { pendingToDevice: 7 });
    assert.match(queued ?? "", /server still holds 7 to-device messages/);
    const [unusable] = checkDecryptions([undec(true)], expected);
    assert.match(unusable ?? "", /room key stored but unusable; .*store holds the session/);
    const [missing] = checkDecryptions([], expected);
    assert.match(missing ?? "", /not in the final run's history/);
  });

  it("errors the victim printed are reported", () => {
    assert.deepEqual(checkNoErrors([{ t: "error", where: "send", code: "X", message: "m", run: 3 }]), [
      "run 3: send error X: m",
    ]);
  });

  it("uploads: a key ID re-uploaded with other material, a key under two IDs, a refused upload", () => {
    const fine = checkUploads(
      [
        upload({ "signed_curve25519:A": "ka" }),
        upload({ "signed_curve25519:A": "ka", "signed_curve25519:B": "kb" }),
      ],
      tokens,
      victim,
      "ed",
    );
    assert.deepEqual(fine.problems, []);
    assert.equal(fine.uploaded.get("signed_curve25519:B"), "kb");
    // Another device's uploads do not count.
    assert.deepEqual(
      checkUploads(
        [upload({ "signed_curve25519:A": "ka" }), upload({ "signed_curve25519:A": "kx" }, "tp")],
        tokens,
        victim,
        "ed",
      ).problems,
      [],
    );
    const reused = checkUploads(
      [upload({ "signed_curve25519:A": "ka" }), upload({ "signed_curve25519:A": "other" }, "tv", 400)],
      tokens,
      victim,
      "ed",
    ).problems;
    assert.equal(reused.length, 2);
    assert.ok(reused.some((p) => /refused with 400/.test(p)));
    assert.ok(reused.some((p) => /uploaded again with another key/.test(p)));
    const twoIds = checkUploads(
      [upload({ "signed_curve25519:A": "ka" }), upload({ "signed_curve25519:B": "ka" })],
      tokens,
      victim,
      "ed",
    ).problems;
    assert.deepEqual(twoIds, ["one-time key signed_curve25519:B also uploaded as signed_curve25519:A"]);
    const changed = checkUploads(
      [
        { ...upload({}), request: { device_keys: { keys: { "ed25519:VDEV": "ed" } } } },
        { ...upload({}), request: { device_keys: { keys: { "ed25519:VDEV": "ed2" } } } },
      ],
      tokens,
      victim,
      "ed",
    ).problems;
    assert.equal(changed.length, 2);
  });

  it("claims: a key handed out twice, an empty claim, a key the victim never uploaded", () => {
    const uploaded = new Map([
      ["signed_curve25519:A", "ka"],
      ["signed_curve25519:B", "kb"],
    ]);
    const ok = checkClaims(
      [
        claim({ "signed_curve25519:A": otk("ka") }),
        claim({ "signed_curve25519:F": otk("kf", true) }),
        claim({ "signed_curve25519:F": otk("kf", true) }),
      ],
      victim,
      uploaded,
    );
    assert.deepEqual(ok, { problems: [], claimed: 1, fallbackClaims: 2 });
    const twice = checkClaims(
      [claim({ "signed_curve25519:A": otk("ka") }), claim({ "signed_curve25519:A": otk("ka") })],
      victim,
      uploaded,
    );
    assert.deepEqual(twice.problems, ["one-time key signed_curve25519:A was claimed twice"]);
    assert.equal(checkClaims([claim({})], victim, uploaded).problems.length, 1);
    const foreign = checkClaims([claim({ "signed_curve25519:B": otk("kz") })], victim, uploaded).problems;
    assert.deepEqual(foreign, [
      "claimed one-time key signed_curve25519:B is not the one the victim uploaded",
    ]);
  });

  it("stored keys: a row with material no upload carried is reported", () => {
    const uploaded = new Map([["signed_curve25519:A", "ka"]]);
    const row = (id: string, key: string) => ({
      algorithm: "signed_curve25519",
      key_id: id,
      key_json: JSON.stringify(otk(key)),
    });
    assert.deepEqual(checkStoredKeys([row("A", "ka")], uploaded), []);
    assert.equal(checkStoredKeys([row("A", "kb")], uploaded).length, 1);
    assert.equal(checkStoredKeys([row("Q", "kq")], uploaded).length, 1);
  });
});

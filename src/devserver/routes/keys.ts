// E2EE key endpoints: upload, query, claim, changes, cross-signing keys and signatures.
import * as z from "../../wire/zod.ts";
import { badJson, forbidden, MatrixError } from "../errors.ts";
import { canonicalJson, verifySignedObject } from "../event-format.ts";
import type { Homeserver } from "../homeserver.ts";
import type { RouteContext } from "../route-context.ts";
import { authed, jsonBody } from "../router.ts";
import { deviceListsBetween, parseToken } from "../sync.ts";
import { type JsonObject, slot } from "../types.ts";
import { uiaAuthField } from "../uia.ts";

/** Most one-time keys accepted in one upload. */
export const MAX_ONE_TIME_KEYS_PER_UPLOAD = 1000;
/**
 * Most one-time keys a device may hold (every algorithm together; clients keep about 50 uploaded).
 * An upload that would pass it is refused whole with 403 M_FORBIDDEN.
 */
export const MAX_ONE_TIME_KEYS_PER_DEVICE = 10_000;
/** Most fallback keys (one per algorithm) a device may hold. */
export const MAX_FALLBACK_KEYS_PER_DEVICE = 16;
/** Largest stored one-time or fallback key object (one is a few hundred bytes). */
export const MAX_ONE_TIME_KEY_BYTES = 4096;
/** Largest stored device keys or cross-signing key object. */
export const MAX_DEVICE_KEYS_BYTES = 64 * 1024;

/**
 * `value` as the JSON text to store, refused (413 M_TOO_LARGE) past `limit` bytes: keys are served
 * to everyone who queries or claims them.
 */
export function keyJson(value: unknown, limit: number, what: string): string {
  const text = JSON.stringify(value);
  if (Buffer.byteLength(text) > limit)
    throw new MatrixError(413, "M_TOO_LARGE", `${what} is larger than ${limit} bytes`);
  return text;
}

/** Most users one keys/query or keys/claim request may name. */
export const MAX_USERS_PER_KEY_REQUEST = 1000;

const json = z.record(z.string(), z.unknown());
const signatures = z.record(z.string(), z.record(z.string(), z.string()));
const deviceKeysSchema = z.looseObject({
  user_id: z.string(),
  device_id: z.string(),
  algorithms: z.array(z.string()),
  keys: z.record(z.string(), z.string()),
  signatures: z.optional(signatures),
});
const crossSigningKeySchema = z.looseObject({
  user_id: z.string(),
  usage: z.array(z.string()).check(z.minLength(1)),
  keys: z.record(z.string(), z.string()),
  signatures: z.optional(signatures),
});
type CrossSigningKey = z.infer<typeof crossSigningKeySchema>;

const withoutSigs = (o: JsonObject): string => {
  const { signatures: _s, unsigned: _u, ...rest } = o;
  return canonicalJson(rest);
};

/** The single `ed25519:<pub>` key of a cross-signing key. */
function singleKey(k: CrossSigningKey): { keyId: string; pub: string } {
  const entries = Object.entries(k.keys);
  const first = entries[0];
  if (entries.length !== 1 || !first || !first[0].startsWith("ed25519:") || first[0].slice(8) !== first[1]) {
    throw new MatrixError(
      400,
      "M_INVALID_PARAM",
      "A cross-signing key must hold exactly one ed25519 key named by itself",
    );
  }
  return { keyId: first[0], pub: first[1] };
}

function parseStored<T>(s: string | undefined): T | undefined {
  return s === undefined ? undefined : (JSON.parse(s) as T);
}

/** Adds uploaded signatures that `viewer` may see: the owner's own, and the viewer's. */
function withVisibleSignatures(
  hs: Homeserver,
  obj: JsonObject,
  owner: string,
  targetKeyId: string,
  viewer: string,
): JsonObject {
  const sigs: Record<string, Record<string, string>> = structuredClone(
    (obj.signatures as Record<string, Record<string, string>> | undefined) ?? {},
  );
  for (const row of hs.keys.signaturesOn(owner, targetKeyId)) {
    if (row.signer_user_id !== owner && row.signer_user_id !== viewer) continue;
    slot(sigs, row.signer_user_id, () => ({}))[row.signer_key_id] = row.signature;
  }
  return { ...obj, signatures: sigs };
}

export function registerKeyRoutes({ hs, router, uia }: RouteContext): void {
  router.client("POST", "/keys/upload", (req) => {
    const a = authed(req);
    // An appservice acting without a device (no `device_id`) has no device to hold keys.
    if (a.deviceId === "")
      throw new MatrixError(400, "M_MISSING_PARAM", "device_id is required to upload keys");
    const body = jsonBody(
      req,
      z.object({
        device_keys: z.optional(deviceKeysSchema),
        one_time_keys: z.optional(z.record(z.string(), z.union([z.string(), json]))),
        fallback_keys: z.optional(z.record(z.string(), z.union([z.string(), json]))),
        "org.matrix.msc2732.fallback_keys": z.optional(z.record(z.string(), z.union([z.string(), json]))),
      }),
    );
    let newDeviceKeys: string | undefined;
    if (body.device_keys) {
      const dk = body.device_keys;
      if (dk.user_id !== a.userId || dk.device_id !== a.deviceId) {
        throw new MatrixError(400, "M_INVALID_PARAM", "device_keys must be for the calling user and device");
      }
      const edKey = dk.keys[`ed25519:${a.deviceId}`];
      if (!edKey || !verifySignedObject(dk, a.userId, `ed25519:${a.deviceId}`, edKey)) {
        throw new MatrixError(400, "M_INVALID_SIGNATURE", "Device keys are not signed by the device's key");
      }
      const stored = parseStored<JsonObject>(
        hs.accounts.getDevice(a.userId, a.deviceId)?.device_keys ?? undefined,
      );
      if (stored) {
        // As Synapse: a device's identity keys never change; a new identity needs a new device.
        if (
          canonicalJson(stored.keys) !== canonicalJson(dk.keys) ||
          canonicalJson(stored.algorithms) !== canonicalJson(dk.algorithms)
        ) {
          throw new MatrixError(
            400,
            "M_INVALID_PARAM",
            `Device key for ${a.deviceId} already exists with different keys`,
          );
        }
      }
      const { unsigned: _u, ...clean } = dk;
      if (!stored || canonicalJson(stored) !== canonicalJson(clean)) {
        newDeviceKeys = keyJson(clean, MAX_DEVICE_KEYS_BYTES, "device_keys");
      }
    }
    const fallbacks = body.fallback_keys ?? body["org.matrix.msc2732.fallback_keys"] ?? {};
    // All or nothing: refused one-time keys leave the device keys as they were.
    hs.tx(() => {
      if (newDeviceKeys !== undefined) hs.accounts.setDeviceKeys(a.userId, a.deviceId, newDeviceKeys);
      storeKeys(hs, a.userId, a.deviceId, body.one_time_keys ?? {}, fallbacks);
    });
    if (newDeviceKeys !== undefined) hs.deviceListChanged(a.userId);
    hs.notifier.poke();
    return {
      json: {
        one_time_key_counts: { signed_curve25519: 0, ...hs.keys.oneTimeKeyCounts(a.userId, a.deviceId) },
      },
    };
  });

  router.client("POST", "/keys/query", (req) => {
    const a = authed(req);
    const body = jsonBody(
      req,
      z.object({ device_keys: z.record(z.string(), z.array(z.string())), timeout: z.optional(z.number()) }),
    );
    const users = Object.entries(body.device_keys);
    if (users.length > MAX_USERS_PER_KEY_REQUEST) throw badJson("Too many users in one query");
    const deviceKeys: Record<string, Record<string, JsonObject>> = {};
    const master: Record<string, JsonObject> = {};
    const selfSigning: Record<string, JsonObject> = {};
    const userSigning: Record<string, JsonObject> = {};
    for (const [userId, wanted] of users) {
      const out: Record<string, JsonObject> = {};
      for (const d of hs.accounts.listDevices(userId)) {
        if (!d.device_keys || (wanted.length > 0 && !wanted.includes(d.device_id))) continue;
        const keys = withVisibleSignatures(
          hs,
          JSON.parse(d.device_keys) as JsonObject,
          userId,
          d.device_id,
          a.userId,
        );
        keys.unsigned = d.display_name !== null ? { device_display_name: d.display_name } : {};
        out[d.device_id] = keys;
      }
      deviceKeys[userId] = out;
      const mk = parseStored<CrossSigningKey>(hs.keys.getCrossSigningKey(userId, "master"));
      if (mk) master[userId] = withVisibleSignatures(hs, mk, userId, singleKey(mk).pub, a.userId);
      const ssk = parseStored<JsonObject>(hs.keys.getCrossSigningKey(userId, "self_signing"));
      if (ssk) selfSigning[userId] = ssk;
      // A user-signing key is only ever shown to its owner.
      const usk =
        userId === a.userId
          ? parseStored<JsonObject>(hs.keys.getCrossSigningKey(userId, "user_signing"))
          : undefined;
      if (usk) userSigning[userId] = usk;
    }
    return {
      json: {
        device_keys: deviceKeys,
        failures: {},
        master_keys: master,
        self_signing_keys: selfSigning,
        user_signing_keys: userSigning,
      },
    };
  });

  router.client("POST", "/keys/claim", (req) => {
    authed(req);
    const body = jsonBody(
      req,
      z.object({
        one_time_keys: z.record(z.string(), z.record(z.string(), z.string())),
        timeout: z.optional(z.number()),
      }),
    );
    const users = Object.entries(body.one_time_keys);
    if (users.length > MAX_USERS_PER_KEY_REQUEST) throw badJson("Too many users in one claim");
    const result: Record<string, Record<string, Record<string, unknown>>> = {};
    hs.tx(() => {
      for (const [userId, devices] of users) {
        for (const [deviceId, algorithm] of Object.entries(devices)) {
          // One-time key first; the fallback key only when none are left (it stays, marked used).
          const otk = hs.keys.takeOneTimeKey(userId, deviceId, algorithm);
          let found: { keyId: string; json: string } | undefined = otk;
          if (!found) {
            const fb = hs.keys.getFallbackKey(userId, deviceId, algorithm);
            if (fb) {
              hs.keys.markFallbackUsed(userId, deviceId, algorithm);
              found = fb;
            }
          }
          if (!found) continue;
          const forUser = slot(result, userId, () => ({}));
          slot(forUser, deviceId, () => ({}))[`${algorithm}:${found.keyId}`] = JSON.parse(found.json);
        }
      }
    });
    // Key counts changed: appservices hear about it in their next transaction (MSC3202).
    hs.notifier.poke();
    return { json: { one_time_keys: result, failures: {} } };
  });

  router.client("GET", "/keys/changes", (req) => {
    const a = authed(req);
    const fromRaw = req.query.get("from");
    const toRaw = req.query.get("to");
    if (fromRaw === null || toRaw === null)
      throw new MatrixError(400, "M_MISSING_PARAM", "from and to are required");
    const from = parseToken(fromRaw).pos;
    const to = Math.min(parseToken(toRaw).pos, hs.stream.current);
    return { json: deviceListsBetween(hs, a.userId, from, to) };
  });

  router.client("POST", "/keys/device_signing/upload", (req) => {
    const a = authed(req);
    const body = jsonBody(
      req,
      z.object({
        master_key: z.optional(crossSigningKeySchema),
        self_signing_key: z.optional(crossSigningKeySchema),
        user_signing_key: z.optional(crossSigningKeySchema),
        auth: uiaAuthField,
      }),
    );
    const currentMaster = parseStored<CrossSigningKey>(hs.keys.getCrossSigningKey(a.userId, "master"));
    const uploads = [
      ["master", body.master_key],
      ["self_signing", body.self_signing_key],
      ["user_signing", body.user_signing_key],
    ] as const;
    const changes = uploads.filter(([type, k]) => {
      if (!k) return false;
      const cur = hs.keys.getCrossSigningKey(a.userId, type);
      return cur === undefined || withoutSigs(JSON.parse(cur) as JsonObject) !== withoutSigs(k);
    });
    const master = body.master_key ?? currentMaster;
    for (const [type, k] of uploads) {
      if (!k) continue;
      if (k.user_id !== a.userId)
        throw new MatrixError(400, "M_INVALID_PARAM", "Cross-signing keys must be for the calling user");
      const usage = type === "master" ? "master" : type;
      if (!k.usage.includes(usage))
        throw new MatrixError(400, "M_INVALID_PARAM", `${type} key must have usage ${usage}`);
      singleKey(k);
      if (type !== "master") {
        if (!master) throw new MatrixError(400, "M_INVALID_PARAM", "Upload a master key first");
        const mk = singleKey(master);
        if (!verifySignedObject(k, a.userId, mk.keyId, mk.pub)) {
          throw new MatrixError(400, "M_INVALID_SIGNATURE", `${type} key is not signed by the master key`);
        }
      }
    }
    // Checked after validation, so a bad upload fails before asking for a password.
    // The first upload needs no re-authentication (MSC3967); replacing keys does, except for an
    // appservice acting for its user (MSC4190, as Synapse: the user has no password to give).
    if (currentMaster && changes.length > 0 && a.appserviceId === undefined) {
      uia.require(body.auth, `device_signing:${a.userId}`, [["m.login.password"]], a.userId);
    }
    if (changes.length === 0) return { json: {} };
    hs.tx(() => {
      for (const [type, k] of changes) {
        const old = parseStored<CrossSigningKey>(hs.keys.getCrossSigningKey(a.userId, type));
        if (old) {
          const oldKey = singleKey(old);
          hs.keys.deleteSignaturesBy(a.userId, oldKey.keyId);
          if (type === "master") hs.keys.deleteSignaturesOn(a.userId, oldKey.pub);
        }
        const { unsigned: _u, ...clean } = k!;
        hs.keys.putCrossSigningKey(a.userId, type, keyJson(clean, MAX_DEVICE_KEYS_BYTES, `${type} key`));
      }
    });
    hs.deviceListChanged(a.userId);
    return { json: {} };
  });

  router.client("POST", "/keys/signatures/upload", (req) => {
    const a = authed(req);
    const body = jsonBody(req, z.record(z.string(), z.record(z.string(), json)));
    const failures: Record<string, Record<string, { errcode: string; error: string }>> = {};
    const fail = (u: string, k: string, errcode: string, error: string): void => {
      slot(failures, u, () => ({}))[k] = { errcode, error };
    };
    const changedUsers = new Set<string>();
    const signerKeys = (): Map<string, string> => {
      // Keys of the uploader that may sign: its cross-signing keys and its devices' ed25519 keys.
      const m = new Map<string, string>();
      for (const type of ["master", "self_signing", "user_signing"]) {
        const k = parseStored<CrossSigningKey>(hs.keys.getCrossSigningKey(a.userId, type));
        if (k) {
          const s = singleKey(k);
          m.set(s.keyId, s.pub);
        }
      }
      for (const d of hs.accounts.listDevices(a.userId)) {
        const dk = parseStored<{ keys: Record<string, string> }>(d.device_keys ?? undefined);
        const ed = dk?.keys[`ed25519:${d.device_id}`];
        if (ed) m.set(`ed25519:${d.device_id}`, ed);
      }
      return m;
    };
    const mine = signerKeys();
    const ssk = parseStored<CrossSigningKey>(hs.keys.getCrossSigningKey(a.userId, "self_signing"));
    const usk = parseStored<CrossSigningKey>(hs.keys.getCrossSigningKey(a.userId, "user_signing"));
    hs.tx(() => {
      for (const [targetUser, objects] of Object.entries(body)) {
        for (const [targetKeyId, signed] of Object.entries(objects)) {
          // Find what is being signed: a device of the target, or the target's master key.
          let stored: JsonObject | undefined;
          const device = hs.accounts.getDevice(targetUser, targetKeyId);
          if (device?.device_keys) stored = JSON.parse(device.device_keys) as JsonObject;
          const mk = parseStored<CrossSigningKey>(hs.keys.getCrossSigningKey(targetUser, "master"));
          const isMaster = mk !== undefined && singleKey(mk).pub === targetKeyId;
          if (isMaster) stored = mk;
          if (!stored) {
            fail(targetUser, targetKeyId, "M_NOT_FOUND", "Key not found");
            continue;
          }
          if (withoutSigs(stored) !== withoutSigs(signed)) {
            fail(targetUser, targetKeyId, "M_INVALID_PARAM", "Signed object does not match the stored key");
            continue;
          }
          const sigs =
            (signed.signatures as Record<string, Record<string, unknown>> | undefined)?.[a.userId] ?? {};
          let added = 0;
          for (const signerKeyId of Object.keys(sigs)) {
            const existing = (stored.signatures as Record<string, Record<string, string>> | undefined)?.[
              a.userId
            ]?.[signerKeyId];
            if (existing !== undefined && existing === sigs[signerKeyId]) continue;
            // Which key may sign what: own devices by the self-signing key, own master key by a device
            // (or the master itself), another user's master key by the user-signing key.
            let allowed: boolean;
            if (targetUser === a.userId) {
              allowed = isMaster
                ? signerKeyId.startsWith("ed25519:") && mine.has(signerKeyId)
                : ssk !== undefined && singleKey(ssk).keyId === signerKeyId;
            } else {
              allowed = isMaster && usk !== undefined && singleKey(usk).keyId === signerKeyId;
            }
            const pub = mine.get(signerKeyId);
            if (!allowed || !pub) {
              fail(
                targetUser,
                targetKeyId,
                "M_INVALID_SIGNATURE",
                `Key ${signerKeyId} may not sign this key`,
              );
              continue;
            }
            if (!verifySignedObject(signed, a.userId, signerKeyId, pub)) {
              fail(targetUser, targetKeyId, "M_INVALID_SIGNATURE", "Invalid signature");
              continue;
            }
            hs.keys.putSignature({
              signer_user_id: a.userId,
              signer_key_id: signerKeyId,
              target_user_id: targetUser,
              target_key_id: targetKeyId,
              signature: sigs[signerKeyId] as string,
            });
            added += 1;
          }
          if (added > 0) changedUsers.add(targetUser);
        }
      }
    });
    // Signatures on one's own keys are seen by everyone; on another user's master key, by the signer only.
    for (const u of changedUsers) {
      if (u === a.userId) hs.deviceListChanged(u);
      else hs.userSignatureChanged(a.userId, u);
    }
    return { json: { failures } };
  });
}

/**
 * Whether an uploaded one-time key is the one stored under its ID, as Synapse decides it
 * (`_one_time_keys_match`): signatures left out, since a client may sign a key again when it
 * retries an upload; a key that is not an object must be the same exactly.
 */
function sameOneTimeKey(storedJson: string, uploaded: unknown): boolean {
  const stored: unknown = JSON.parse(storedJson);
  const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(stored) || !isObject(uploaded)) return canonicalJson(stored) === canonicalJson(uploaded);
  const { signatures: _a, ...a } = stored;
  const { signatures: _b, ...b } = uploaded;
  return canonicalJson(a) === canonicalJson(b);
}

/**
 * Stores a device's uploaded one-time and fallback keys (call inside a transaction). As Synapse: a
 * one-time key ID still held (not claimed) with another key is refused with 400 `M_UNKNOWN`
 * "One time key <id> already exists. Old key: …; new key: …", the same key again is accepted (and
 * stored once), and a fallback key replaces the one held.
 */
export function storeKeys(
  hs: Homeserver,
  userId: string,
  deviceId: string,
  oneTimeKeys: Record<string, unknown>,
  fallbackKeys: Record<string, unknown>,
): void {
  const otks = Object.entries(oneTimeKeys);
  if (otks.length > MAX_ONE_TIME_KEYS_PER_UPLOAD) throw badJson("Too many one-time keys in one upload");
  for (const [id, key] of otks) {
    const [algorithm, keyId] = splitKeyId(id);
    const existing = hs.keys.getOneTimeKey(userId, deviceId, algorithm, keyId);
    if (existing !== undefined && !sameOneTimeKey(existing, key)) {
      throw new MatrixError(
        400,
        "M_UNKNOWN",
        `One time key ${id} already exists. Old key: ${existing}; new key: ${JSON.stringify(key)}`,
      );
    }
    hs.keys.putOneTimeKey(userId, deviceId, algorithm, keyId, keyJson(key, MAX_ONE_TIME_KEY_BYTES, id));
  }
  for (const [id, key] of Object.entries(fallbackKeys)) {
    const [algorithm, keyId] = splitKeyId(id);
    const existing = hs.keys.getFallbackKey(userId, deviceId, algorithm);
    if (
      existing &&
      existing.keyId === keyId &&
      canonicalJson(JSON.parse(existing.json)) === canonicalJson(key)
    )
      continue;
    hs.keys.putFallbackKey(userId, deviceId, algorithm, keyId, keyJson(key, MAX_ONE_TIME_KEY_BYTES, id));
  }
  // Checked after writing (the caller's transaction undoes it all): repeated IDs do not count twice.
  const held = hs.keys.storedKeyCounts(userId, deviceId);
  if (held.oneTime > MAX_ONE_TIME_KEYS_PER_DEVICE) {
    throw forbidden(`A device holds at most ${MAX_ONE_TIME_KEYS_PER_DEVICE} one-time keys`);
  }
  if (held.fallback > MAX_FALLBACK_KEYS_PER_DEVICE) {
    throw forbidden(`A device holds at most ${MAX_FALLBACK_KEYS_PER_DEVICE} fallback keys`);
  }
}

function splitKeyId(id: string): [string, string] {
  const i = id.indexOf(":");
  if (i <= 0 || i === id.length - 1) throw badJson(`Invalid key ID ${id}`);
  return [id.slice(0, i), id.slice(i + 1)];
}

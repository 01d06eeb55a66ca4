// E2EE key material: one-time and fallback keys, cross-signing keys, uploaded signatures,
// device-list change stream, to-device queues.
import type { Db } from "./db.ts";

export interface SignatureRow {
  signer_user_id: string;
  signer_key_id: string;
  target_user_id: string;
  target_key_id: string;
  signature: string;
}

export class KeyStore {
  private readonly s;
  constructor(db: Db) {
    this.s = {
      putOtk: db.prepare(
        `INSERT OR IGNORE INTO one_time_keys (user_id, device_id, algorithm, key_id, key_json)
         VALUES (?, ?, ?, ?, ?)`,
      ),
      getOtk: db.prepare(
        "SELECT key_json FROM one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ? AND key_id = ?",
      ),
      otkCounts: db.prepare(
        "SELECT algorithm, COUNT(*) AS n FROM one_time_keys WHERE user_id = ? AND device_id = ? GROUP BY algorithm",
      ),
      firstOtk: db.prepare(
        `SELECT key_id, key_json FROM one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ?
         ORDER BY rowid LIMIT 1`,
      ),
      deleteOtk: db.prepare(
        "DELETE FROM one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ? AND key_id = ?",
      ),
      otkTotal: db.prepare("SELECT COUNT(*) AS n FROM one_time_keys WHERE user_id = ? AND device_id = ?"),
      fallbackTotal: db.prepare(
        "SELECT COUNT(*) AS n FROM fallback_keys WHERE user_id = ? AND device_id = ?",
      ),
      toDeviceTotal: db.prepare("SELECT COUNT(*) AS n FROM to_device WHERE user_id = ? AND device_id = ?"),
      deleteDeviceOtks: db.prepare("DELETE FROM one_time_keys WHERE user_id = ? AND device_id = ?"),
      putFallback: db.prepare(
        `INSERT INTO fallback_keys (user_id, device_id, algorithm, key_id, key_json, used) VALUES (?, ?, ?, ?, ?, 0)
         ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET key_id = excluded.key_id,
           key_json = excluded.key_json, used = 0`,
      ),
      getFallback: db.prepare(
        "SELECT key_id, key_json, used FROM fallback_keys WHERE user_id = ? AND device_id = ? AND algorithm = ?",
      ),
      markFallbackUsed: db.prepare(
        "UPDATE fallback_keys SET used = 1 WHERE user_id = ? AND device_id = ? AND algorithm = ?",
      ),
      unusedFallbacks: db.prepare(
        "SELECT algorithm FROM fallback_keys WHERE user_id = ? AND device_id = ? AND used = 0 ORDER BY algorithm",
      ),
      deleteDeviceFallbacks: db.prepare("DELETE FROM fallback_keys WHERE user_id = ? AND device_id = ?"),
      putCrossSigning: db.prepare(
        `INSERT INTO cross_signing_keys (user_id, key_type, key_json) VALUES (?, ?, ?)
         ON CONFLICT (user_id, key_type) DO UPDATE SET key_json = excluded.key_json`,
      ),
      getCrossSigning: db.prepare(
        "SELECT key_json FROM cross_signing_keys WHERE user_id = ? AND key_type = ?",
      ),
      putSignature: db.prepare(
        `INSERT OR REPLACE INTO key_signatures (signer_user_id, signer_key_id, target_user_id, target_key_id, signature)
         VALUES (?, ?, ?, ?, ?)`,
      ),
      signaturesOn: db.prepare("SELECT * FROM key_signatures WHERE target_user_id = ? AND target_key_id = ?"),
      deleteSignaturesOn: db.prepare(
        "DELETE FROM key_signatures WHERE target_user_id = ? AND target_key_id = ?",
      ),
      deleteSignaturesBy: db.prepare(
        "DELETE FROM key_signatures WHERE signer_user_id = ? AND signer_key_id = ?",
      ),
      addDeviceListChange: db.prepare(
        "INSERT INTO device_list_changes (stream_id, user_id, viewer) VALUES (?, ?, ?)",
      ),
      deviceListChanges: db.prepare(
        "SELECT DISTINCT user_id, viewer FROM device_list_changes WHERE stream_id > ? AND stream_id <= ? AND (viewer IS NULL OR viewer = ?)",
      ),
      putToDevice: db.prepare(
        "INSERT INTO to_device (stream_id, user_id, device_id, json) VALUES (?, ?, ?, ?)",
      ),
      ackToDevice: db.prepare("DELETE FROM to_device WHERE user_id = ? AND device_id = ? AND stream_id <= ?"),
      pendingToDevice: db.prepare(
        `SELECT stream_id, json FROM to_device WHERE user_id = ? AND device_id = ? AND stream_id > ?
         ORDER BY stream_id LIMIT ?`,
      ),
      deleteDeviceToDevice: db.prepare("DELETE FROM to_device WHERE user_id = ? AND device_id = ?"),
      putDehydrated: db.prepare(
        `INSERT INTO dehydrated_devices (user_id, device_id, device_data) VALUES (?, ?, ?)
         ON CONFLICT (user_id) DO UPDATE SET device_id = excluded.device_id, device_data = excluded.device_data`,
      ),
      getDehydrated: db.prepare("SELECT device_id, device_data FROM dehydrated_devices WHERE user_id = ?"),
      deleteDehydrated: db.prepare("DELETE FROM dehydrated_devices WHERE user_id = ? AND device_id = ?"),
    };
  }

  putOneTimeKey(user: string, device: string, algorithm: string, keyId: string, json: string): void {
    this.s.putOtk.run(user, device, algorithm, keyId, json);
  }
  getOneTimeKey(user: string, device: string, algorithm: string, keyId: string): string | undefined {
    const r = this.s.getOtk.get(user, device, algorithm, keyId) as { key_json: string } | undefined;
    return r?.key_json;
  }
  oneTimeKeyCounts(user: string, device: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.s.otkCounts.all(user, device) as { algorithm: string; n: number }[]) {
      out[r.algorithm] = r.n;
    }
    return out;
  }
  /** How many one-time keys (of every algorithm) and fallback keys the device holds. */
  storedKeyCounts(user: string, device: string): { oneTime: number; fallback: number } {
    const n = (stmt: typeof this.s.otkTotal) => (stmt.get(user, device) as { n: number }).n;
    return { oneTime: n(this.s.otkTotal), fallback: n(this.s.fallbackTotal) };
  }
  /** Removes and returns the oldest one-time key of `algorithm`. */
  takeOneTimeKey(
    user: string,
    device: string,
    algorithm: string,
  ): { keyId: string; json: string } | undefined {
    const r = this.s.firstOtk.get(user, device, algorithm) as
      | { key_id: string; key_json: string }
      | undefined;
    if (!r) return undefined;
    this.s.deleteOtk.run(user, device, algorithm, r.key_id);
    return { keyId: r.key_id, json: r.key_json };
  }
  putFallbackKey(user: string, device: string, algorithm: string, keyId: string, json: string): void {
    this.s.putFallback.run(user, device, algorithm, keyId, json);
  }
  getFallbackKey(
    user: string,
    device: string,
    algorithm: string,
  ): { keyId: string; json: string; used: boolean } | undefined {
    const r = this.s.getFallback.get(user, device, algorithm) as
      | { key_id: string; key_json: string; used: number }
      | undefined;
    return r ? { keyId: r.key_id, json: r.key_json, used: r.used === 1 } : undefined;
  }
  markFallbackUsed(user: string, device: string, algorithm: string): void {
    this.s.markFallbackUsed.run(user, device, algorithm);
  }
  unusedFallbackTypes(user: string, device: string): string[] {
    return (this.s.unusedFallbacks.all(user, device) as { algorithm: string }[]).map((r) => r.algorithm);
  }

  putCrossSigningKey(user: string, keyType: string, json: string): void {
    this.s.putCrossSigning.run(user, keyType, json);
  }
  getCrossSigningKey(user: string, keyType: string): string | undefined {
    return (this.s.getCrossSigning.get(user, keyType) as { key_json: string } | undefined)?.key_json;
  }
  putSignature(row: SignatureRow): void {
    this.s.putSignature.run(
      row.signer_user_id,
      row.signer_key_id,
      row.target_user_id,
      row.target_key_id,
      row.signature,
    );
  }
  signaturesOn(targetUser: string, targetKeyId: string): SignatureRow[] {
    return this.s.signaturesOn.all(targetUser, targetKeyId) as SignatureRow[];
  }
  deleteSignaturesOn(targetUser: string, targetKeyId: string): void {
    this.s.deleteSignaturesOn.run(targetUser, targetKeyId);
  }
  deleteSignaturesBy(signerUser: string, signerKeyId: string): void {
    this.s.deleteSignaturesBy.run(signerUser, signerKeyId);
  }

  /** A change of `user`'s keys; with `viewer`, seen by that user only (a signature only they see). */
  addDeviceListChange(pos: number, user: string, viewer?: string): void {
    this.s.addDeviceListChange.run(pos, user, viewer ?? null);
  }
  /** Changes `viewer` may see; `only` marks those meant for the viewer alone. */
  deviceListChangesBetween(from: number, to: number, viewer: string): { userId: string; only: boolean }[] {
    return (
      this.s.deviceListChanges.all(from, to, viewer) as { user_id: string; viewer: string | null }[]
    ).map((r) => ({ userId: r.user_id, only: r.viewer !== null }));
  }

  queueToDevice(pos: number, user: string, device: string, json: string): void {
    this.s.putToDevice.run(pos, user, device, json);
  }
  /** How many to-device messages wait for the device. */
  queuedToDevice(user: string, device: string): number {
    return (this.s.toDeviceTotal.get(user, device) as { n: number }).n;
  }
  ackToDevice(user: string, device: string, upTo: number): void {
    this.s.ackToDevice.run(user, device, upTo);
  }
  pendingToDevice(
    user: string,
    device: string,
    after: number,
    limit: number,
  ): { pos: number; json: string }[] {
    return (
      this.s.pendingToDevice.all(user, device, after, limit) as { stream_id: number; json: string }[]
    ).map((r) => ({ pos: r.stream_id, json: r.json }));
  }
  /** The user's dehydrated device (MSC3814): its ID and its `device_data` JSON. */
  getDehydratedDevice(user: string): { deviceId: string; deviceData: string } | undefined {
    const r = this.s.getDehydrated.get(user) as { device_id: string; device_data: string } | undefined;
    return r && { deviceId: r.device_id, deviceData: r.device_data };
  }
  putDehydratedDevice(user: string, device: string, deviceData: string): void {
    this.s.putDehydrated.run(user, device, deviceData);
  }
  deleteDeviceKeys(user: string, device: string): void {
    this.s.deleteDehydrated.run(user, device);
    this.s.deleteDeviceOtks.run(user, device);
    this.s.deleteDeviceFallbacks.run(user, device);
    this.s.deleteDeviceToDevice.run(user, device);
    this.s.deleteSignaturesOn.run(user, device);
  }
}

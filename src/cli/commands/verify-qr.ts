// verify qr show USER [DEVICE] | verify qr scan (BASE64 | FILE.png): QR verification from the shell.
// `show` asks USER to verify, prints the code (drawn on stderr, its bytes as a base64 JSON line) and,
// once the other device scanned it, reads one stdin line (`y`: they confirmed). `scan` decodes a
// code (base64, or a PNG through jsQR), accepts the request it belongs to and completes the flow.
// Both end with the `done` / `cancelled` lines of `verify request` (exit 0 / 1).
import { readFile } from "node:fs/promises";
import jsQRModule from "jsqr";
import { PNG } from "pngjs";
import QRCode from "qrcode";
import { decodeQrCode } from "../../e2ee/index.ts";
import { CliError } from "../errors.ts";
import { jsonLine } from "../output.ts";
import type { CommandIo } from "./io.ts";
import {
  answerUnlessEnded,
  finish,
  nextRequest,
  unlessStopped,
  whileSyncing,
  withVerifyingClient,
} from "./verify.ts";

/** jsqr is CommonJS with a `default` property: its typings and Node's import disagree on the shape. */
type JsQr = (data: Uint8ClampedArray, width: number, height: number) => { binaryData: number[] } | null;
const jsQR: JsQr = (jsQRModule as unknown as { default?: JsQr }).default ?? (jsQRModule as unknown as JsQr);

/** `keyroom verify qr show USER [DEVICE]`. */
export async function verifyQrShowCommand(
  args: { profileDir: string; userId: string; deviceId?: string },
  io: CommandIo,
): Promise<void> {
  await withVerifyingClient(args.profileDir, async (client) => {
    await whileSyncing(client, async (stopped) => {
      const request = await client.requestVerification(args.userId, args.deviceId);
      // Shown at once: the other side needs the code to answer (it accepts, then scans).
      const bytes = await request.qrBytes();
      if (bytes === undefined) {
        await request.cancel();
        throw new CliError(
          "USAGE",
          "no QR code can be shown (both sides need cross-signing, and the other side must scan)",
        );
      }
      io.err(
        await QRCode.toString([{ data: Buffer.from(bytes), mode: "byte" }], {
          type: "terminal",
          small: true,
        }),
      );
      io.out(jsonLine({ event: "qr", bytes: Buffer.from(bytes).toString("base64") }));
      const scanned = await unlessStopped(
        request.waitFor((s) => s.qr === "reciprocated" || s.phase === "cancelled" || s.phase === "done"),
        stopped,
      );
      if (scanned.qr === "reciprocated" && scanned.phase !== "cancelled") {
        io.out(
          jsonLine({
            event: "scanned",
            user_id: scanned.otherUserId,
            device_id: scanned.otherDeviceId ?? null,
          }),
        );
        if (io.interactive === true)
          io.err("Does the other device say the code was scanned and matches? Type y and Enter if so: ");
        const answer = await answerUnlessEnded(request, io, stopped);
        if (answer?.trim() === "y") await request.confirmQrScanned();
        else if (request.phase !== "cancelled") await request.cancel();
      }
      await finish(request, io, stopped);
    });
  });
}

/** `keyroom verify qr scan (BASE64 | FILE.png)`. */
export async function verifyQrScanCommand(
  args: { profileDir: string; code: string; timeoutMs?: number },
  io: CommandIo,
): Promise<void> {
  const bytes = await readCode(args.code);
  let flowId: string;
  try {
    flowId = decodeQrCode(bytes).flowId;
  } catch {
    throw new CliError("USAGE", "this is not a Matrix verification QR code");
  }
  await withVerifyingClient(args.profileDir, async (client) => {
    // The request the code belongs to (others that come in are left alone).
    const next = nextRequest(client, args.timeoutMs, io.signal, (r) => r.flowId === flowId);
    await whileSyncing(client, async (stopped) => {
      const request = await unlessStopped(next, stopped);
      if (request === undefined) {
        // Stopped by Ctrl-C / SIGTERM (the user) or by --timeout, as `verify listen` reports them.
        const c =
          io.signal?.aborted === true
            ? { code: "m.user", reason: "stopped before the request of this code arrived" }
            : { code: "m.timeout", reason: "the request of this code did not arrive" };
        io.out(jsonLine({ event: "cancelled", ...c }));
        throw new CliError("VERIFICATION_CANCELLED", `verification cancelled (${c.code})`);
      }
      if (request.phase === "requested") await request.accept();
      await request.scanQr(bytes);
      await finish(request, io, stopped);
    });
  });
}

/** Base64 text, or a PNG file holding the code. */
async function readCode(code: string): Promise<Uint8Array> {
  if (code.toLowerCase().endsWith(".png")) {
    let png: PNG;
    try {
      png = PNG.sync.read(await readFile(code));
    } catch (e) {
      throw new CliError("FILE_UNREADABLE", `cannot read ${code} as a PNG`, { cause: e });
    }
    const found = jsQR(
      new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.length),
      png.width,
      png.height,
    );
    if (found === null) throw new CliError("USAGE", `no QR code found in ${code}`);
    return Uint8Array.from(found.binaryData);
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(code))
    throw new CliError("USAGE", "give the code's bytes in base64, or a .png file");
  return new Uint8Array(Buffer.from(code, "base64"));
}

/**
 * libolm's `olm_sas_calculate_mac` base64-encodes the 32-byte MAC *in place*: its encoder reads
 * three bytes at 3k and writes four characters at 4k in the same buffer, so from the third group
 * on it reads bytes it has already overwritten with characters. The result is what every client
 * sends for the legacy `hkdf-hmac-sha256` MAC method (MSC3783 fixed it as
 * `hkdf-hmac-sha256.v2`). This replays that encoder step by step on a scratch buffer.
 */
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const CODES = Uint8Array.from(ALPHABET, (c) => c.charCodeAt(0));

export function libolmInPlaceBase64(input: Uint8Array): string {
  const n = input.length;
  const outLength = Math.floor(n / 3) * 4 + (n % 3 === 0 ? 0 : (n % 3) + 1);
  const buf = new Uint8Array(Math.max(n, outLength));
  buf.set(input);
  let pos = 0;
  let out = 0;
  const whole = n - (n % 3);
  while (pos < whole) {
    // Read the three bytes first, then write four, exactly as the C loop does.
    let value = (buf[pos]! << 16) | (buf[pos + 1]! << 8) | buf[pos + 2]!;
    pos += 3;
    buf[out + 3] = CODES[value & 0x3f]!;
    value >>= 6;
    buf[out + 2] = CODES[value & 0x3f]!;
    value >>= 6;
    buf[out + 1] = CODES[value & 0x3f]!;
    value >>= 6;
    buf[out] = CODES[value]!;
    out += 4;
  }
  const remainder = n - pos;
  if (remainder > 0) {
    let value = buf[pos]!;
    if (remainder === 2) {
      value = (value << 8) | buf[pos + 1]!;
      value <<= 2;
      buf[out + 2] = CODES[value & 0x3f]!;
      value >>= 6;
    } else {
      value <<= 4;
    }
    buf[out + 1] = CODES[value & 0x3f]!;
    value >>= 6;
    buf[out] = CODES[value]!;
  }
  let text = "";
  for (let i = 0; i < outLength; i++) text += String.fromCharCode(buf[i]!);
  buf.fill(0);
  return text;
}

// A matrix-js-sdk device for a test file's devserver fixture (test/e2e/e2ee-client-helpers.ts):
// registered or logged in with password "pw", and closed with the fixture.
import { JsSdkPeer } from "./jssdk.ts";

/** The part of a devserver fixture a js-sdk device needs: where to connect, what closes it. */
export interface PeerFixture {
  readonly hs: { readonly baseUrl: string };
  readonly peers: { close(): Promise<void> }[];
}

/** A js-sdk device of `name`: a new account, or a new login (device) of an existing one. */
export async function jsSdkDevice(
  fx: PeerFixture,
  name: string,
  how: "register" | "login",
): Promise<JsSdkPeer> {
  const peer =
    how === "register"
      ? await JsSdkPeer.register(fx.hs.baseUrl, name, "pw")
      : await JsSdkPeer.login(fx.hs.baseUrl, name, "pw");
  fx.peers.push(peer);
  return peer;
}

// The client beyond the quick start: profile, a direct chat, edits and emotes, typing and receipts,
// media, history and a room upgrade (no encryption); room names in the app's words; the login
// flows and the SSO page. docs/client.md quotes the regions.
import { englishRoomName, MatrixClient } from "keyroom";
import { type ExampleEnv, isMain, nextMessage, runAlone, uniqueName } from "./support.ts";

export interface ClientTourResult {
  readonly displayName: string | undefined;
  readonly sameDirectRoom: boolean;
  readonly directRooms: number;
  /** The room's messages as history walked them, newest first. */
  readonly history: readonly string[];
  readonly downloaded: string;
  readonly followedToUpgrade: boolean;
  /** The name of a room with no one else in it, from the app's formatter. */
  readonly emptyRoomName: string;
  /** The server offers password login (`getLoginFlows`). */
  readonly offersPasswordLogin: boolean;
  /** The SSO page's path and query (`ssoRedirectUrl`). */
  readonly ssoPage: string;
}

export async function run({ homeserverUrl }: ExampleEnv): Promise<ClientTourResult> {
  // #region client-tour
  const alice = new MatrixClient({ homeserverUrl });
  const bob = new MatrixClient({ homeserverUrl });
  await alice.register({ username: uniqueName("alice"), password: "alice's password" });
  await bob.register({ username: uniqueName("bob"), password: "bob's password" });
  await alice.setDisplayName("Alice");
  const { displayName } = await bob.getProfile(alice.userId);

  // A direct chat, recorded in `m.direct`. Once sync has shown the room joined, asking again
  // gives the same room.
  const dm = await alice.createDirectRoom(bob.userId, { encrypted: false });
  await bob.joinRoom(dm);
  await alice.startSync();
  await bob.startSync();
  const sameDirectRoom = (await alice.createDirectRoom(bob.userId)) === dm;
  const directRooms = alice.getDirectRoomIds(bob.userId).length;

  const first = nextMessage(bob, dm);
  const hello = await alice.sendText(dm, "Hello");
  await first;
  await alice.editMessage(dm, hello, "Hello, Bob"); // an `m.replace` of the first message
  await alice.sendEmote(dm, "waves");
  await bob.sendTyping(dm, true);
  await bob.sendReadReceipt(dm, hello);

  // Media: an `mxc://` URI. Unencrypted here; `sendFile` encrypts the file in an encrypted room.
  const mxc = await alice.uploadMedia(new TextEncoder().encode("notes"), {
    contentType: "text/plain",
    filename: "notes.txt",
  });
  const { data } = await bob.downloadMedia(mxc);

  // History from the server, newest first, a page at a time.
  const history: string[] = [];
  for await (const event of bob.history(dm, { pageSize: 10 })) {
    if (event.type === "m.room.message") history.push(String(event.content.body));
  }

  // A room upgrade: the old room's tombstone leads its members to the new room.
  const lobby = await alice.createRoom({ visibility: "public", name: "Lobby" });
  await bob.joinRoom(lobby);
  const lobbyV2 = await alice.upgradeRoom(lobby, "11");
  const followed = await bob.followTombstone(lobby); // joins each successor on the way

  await alice.close();
  await bob.close();
  // #endregion client-tour

  // #region sso-login
  const client = new MatrixClient({ homeserverUrl });
  const flows = await client.getLoginFlows();
  const sso = flows.find((f) => f.type === "m.login.sso");
  // A browser app sends the user to this page (`window.location.assign(ssoPage)`); the server
  // sends the browser back to the redirect URL with a `loginToken` query parameter, and the app
  // logs in with it: `await client.loginWithToken(loginToken)`.
  const ssoPage = client.ssoRedirectUrl("https://app.example/sso-done", sso?.identityProviders[0]?.id);
  // #endregion sso-login

  // #region room-name-formatter
  const carol = new MatrixClient({
    homeserverUrl,
    // French for an empty room, the default's English for the other cases
    roomNameFormatter: (p) => (p.kind === "empty" ? "Salon vide" : englishRoomName(p)),
  });
  // #endregion room-name-formatter
  await carol.register({ username: uniqueName("carol"), password: "carol's password" });
  const alone = await carol.createRoom();
  await carol.syncOnce({ timeoutMs: 0 });
  const emptyRoomName = carol.getRoom(alone)?.displayName ?? "";
  await carol.close();
  const page = new URL(ssoPage);
  return {
    emptyRoomName,
    offersPasswordLogin: flows.some((f) => f.type === "m.login.password"),
    ssoPage: page.pathname + page.search,
    displayName,
    sameDirectRoom,
    directRooms,
    history,
    downloaded: new TextDecoder().decode(data),
    followedToUpgrade: followed === lobbyV2,
  };
}

if (isMain(import.meta.url)) await runAlone(run);

// Client quick start: two users, a room, a message sent and received (no encryption yet).
import { MatrixClient } from "keyroom";
import { type ExampleEnv, isMain, runAlone } from "./support.ts";

export async function run({ homeserverUrl }: ExampleEnv): Promise<string> {
  // #region quick-start
  const alice = new MatrixClient({ homeserverUrl });
  const bob = new MatrixClient({ homeserverUrl });
  // On a real server, `login` instead (registration is open on the devserver):
  // await alice.login({ user: "@alice:example.org", password });
  await alice.register({ username: "alice", password: "alice's password" });
  await bob.register({ username: "bob", password: "bob's password" });

  const roomId = await alice.createRoom({ name: "Quick start", invite: [bob.userId], encrypted: false });
  await bob.joinRoom(roomId);

  const received = new Promise<string>((resolve) => {
    bob.on("room.event", (room, event) => {
      if (room.roomId === roomId && event.type === "m.room.message") resolve(String(event.content.body));
    });
  });
  await bob.startSync(); // resolves after the first sync; keeps long-polling in the background
  await alice.sendText(roomId, "Hello, Bob!");
  const body = await received;

  await bob.stopSync();
  await alice.close();
  await bob.close();
  // #endregion quick-start
  return body;
}

if (isMain(import.meta.url)) await runAlone(run);

// A devserver and an encrypting appservice whose virtual user is started while the appservice runs
// and held in its start: for the tests of what comes for a user that is still starting (to-device
// messages, room events). The start is held after its client is restored (its device keys are on
// the server by then), at the empty key upload that reads the key counts.
import assert from "node:assert/strict";
import { after, before } from "node:test";
import type { MatrixClient } from "../../client/index.ts";
import { type DevServer, startDevServer } from "../../devserver/index.ts";
import type { Registration } from "../../wire/appservice.ts";
import { Appservice } from "../appservice.ts";
import { generateRegistration } from "../registration.ts";
import { type AppserviceListener, listenAppservice } from "../server.ts";
import type { Transaction } from "../transaction.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** Resolves `until(pred)` once `pred` holds, checked on each `check()`. */
export interface Waiter {
  until(pred: () => boolean): Promise<void>;
  check(): void;
}

function waiter(): Waiter {
  const waiting: { pred: () => boolean; resolve: () => void }[] = [];
  return {
    until(pred: () => boolean): Promise<void> {
      if (pred()) return Promise.resolve();
      return new Promise((resolve) => waiting.push({ pred, resolve }));
    },
    check(): void {
      for (const w of [...waiting]) {
        if (!w.pred()) continue;
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve();
      }
    },
  };
}

/** A virtual user whose start is held, in an encrypted room of Ann's (another virtual user). */
export interface HeldStart {
  readonly ann: MatrixClient;
  /** The user's `user()` call, held until `releaseStart()`. */
  readonly starting: Promise<MatrixClient>;
  readonly roomId: string;
}

export interface StartingUserFixture {
  /** Checked after each transaction the appservice handled (and `seen` got it). */
  readonly handled: Waiter;
  /** Lets the held start go on. */
  releaseStart(): void;
  /**
   * Starts the appservice and Ann, then the user, whose start is held; once its device keys are on
   * the server (anyone may send it a room key from then on), Ann invites it to an encrypted room
   * and it joins while it starts (the appservice acts as it, no device needed), and Ann sees the
   * join.
   */
  startHeld(): Promise<HeldStart>;
}

/**
 * Registers `before` / `after` hooks that start and tear down a devserver with the appservice `id`
 * (users `@v_*:localhost`, encryption on), whose virtual user `@<localpart>:localhost` is the one
 * held. `seen` gets each transaction the appservice handled, before `handled` is checked.
 */
export function startingUserFixture(
  id: string,
  localpart: string,
  seen: (txn: Transaction) => void,
): StartingUserFixture {
  const userId = `@${localpart}:localhost`;
  const handled = waiter();
  let server: DevServer | undefined;
  let listener: AppserviceListener | undefined;
  let as: Appservice | undefined;
  let releaseStart: () => void = () => {};
  const startHeld = new Promise<void>((resolve) => {
    releaseStart = resolve;
  });
  let keysUp: () => void = () => {};
  const deviceKeysUp = new Promise<void>((resolve) => {
    keysUp = resolve;
  });
  const reg: Registration = generateRegistration({
    id,
    url: null,
    senderLocalpart: `${id}bot`,
    serverName: "localhost",
    userPrefix: "v_",
    encryption: true,
  });
  const started = (): DevServer => {
    if (server === undefined) throw new Error("the fixture is used before its before() hook ran");
    return server;
  };

  before(async () => {
    listener = await listenAppservice(
      { port: 0, hsToken: reg.hs_token, logger: quiet },
      {
        transaction: async (txnId: string, txn: Transaction) => {
          if (as === undefined) throw new Error("not ready");
          await as.handleTransaction(txnId, txn);
          seen(txn);
          handled.check();
        },
      },
    );
    server = await startDevServer({
      port: 0,
      memory: true,
      appservices: [{ ...reg, url: listener.url }],
      appserviceRetry: { baseMs: 20, maxMs: 200 },
    });
  });
  after(async () => {
    releaseStart();
    await as?.close();
    await listener?.close();
    await server?.close();
  });

  return {
    handled,
    releaseStart: () => releaseStart(),
    async startHeld(): Promise<HeldStart> {
      const hs = started();
      const appservice = new Appservice({
        registration: reg,
        homeserverUrl: hs.baseUrl,
        clientOptions: { fillTimelineGaps: false },
        fetch: async (input, init) => {
          const url = new URL(input);
          const forUser = url.searchParams.get("user_id") === userId;
          const upload = url.pathname.endsWith("/keys/upload") && init.method === "POST";
          // The empty upload that reads the key counts comes after the client is restored.
          if (forUser && upload && init.body === "{}") await startHeld;
          const res = await fetch(input, init);
          if (forUser && upload && String(init.body).includes("device_keys")) keysUp();
          return res;
        },
      });
      await appservice.start();
      as = appservice;
      const ann = await appservice.user("v_ann");
      const starting = appservice.user(localpart);
      await deviceKeysUp;
      const roomId = await ann.createRoom({ encrypted: true, invite: [userId] });
      const join = await fetch(
        `${hs.baseUrl}/_matrix/client/v3/join/${encodeURIComponent(roomId)}?user_id=${encodeURIComponent(userId)}`,
        { method: "POST", headers: { Authorization: `Bearer ${reg.as_token}` }, body: "{}" },
      );
      assert.equal(join.status, 200);
      await handled.until(() => ann.getRoom(roomId)?.getMember(userId)?.membership === "join");
      return { ann, starting, roomId };
    },
  };
}

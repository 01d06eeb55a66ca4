// `keyroom tail` against a failing server: stopped (Ctrl-C, --timeout) while every sync failed,
// status 1 and the failure on stderr, not status 0 as if there were no new messages; while it runs,
// when stderr is a terminal, one stderr line per failure state (not per attempt) and one when
// syncing works again; when it is not (a script), nothing but the one line of an error.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { FileClientStore } from "../../index.ts";
import { SqliteCryptoStore } from "../../store/sqlite/sqlite-store.ts";
import { writeProfile } from "../profile.ts";
import { runCli } from "../program.ts";
import { CLIENT_STORE_FILE } from "../session.ts";

let dir: string;
let server: Server;
/** An answer: HTTP status and JSON body. */
type Answer = [status: number, body: object];
const INTERNAL_ERROR: Answer = [500, { errcode: "M_UNKNOWN", error: "internal error" }];
/**
 * Called with the number of /sync requests so far, at each one; returns the answer (a 500 when
 * undefined). Every other request gets a 500.
 */
let onSync: (n: number) => Answer | undefined = () => undefined;
let syncs = 0;
/** Requests to paths starting with this get no answer (held open until the test ends). */
let hangPrefix: string | undefined;
/** Called when a request to `hangPrefix` arrives. */
let onHang: () => void = () => {};
/** Called when a held request's connection closes (the client's own request timeout gave up). */
let onHeldClosed: () => void = () => {};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "keyroom-cli-tail-"));
  server = createServer((req, res) => {
    if (hangPrefix !== undefined && req.url?.startsWith(hangPrefix)) {
      res.on("close", () => onHeldClosed());
      onHang();
      return;
    }
    const [status, body] =
      (req.url?.startsWith("/_matrix/client/v3/sync") ? onSync(++syncs) : undefined) ?? INTERNAL_ERROR;
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

/** A profile of its own (encryption off unless asked) on the fake server. */
async function profileOnServer(name: string, encryption = false): Promise<string> {
  const { port } = server.address() as { port: number };
  const profile = join(dir, name);
  await writeProfile(profile, {
    version: 1,
    homeserverUrl: `http://127.0.0.1:${port}`,
    userId: "@a:localhost",
    deviceId: "DEV",
    accessToken: "secret-access-token",
    storeDir: join(profile, "accounts"),
    encryption,
  });
  return profile;
}

/**
 * `keyroom tail` (no --timeout) in this process until `stop` aborts: status, stdout, stderr.
 * `errTerminal`: whether stderr is a terminal.
 */
async function tail(
  profile: string,
  stop: AbortController,
  extra: string[] = [],
  errTerminal = false,
): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await runCli(["tail", ...extra, "--profile", profile], {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
    signal: stop.signal,
    errTerminal,
  });
  return { code, out, err };
}

for (const errTerminal of [false, true])
  test(`tail stopped while no sync ever succeeded: status 1 with the server's failure (stderr ${errTerminal ? "a terminal" : "not a terminal"})`, async () => {
    const profile = await profileOnServer(`p-${errTerminal}`);
    const stop = new AbortController();
    syncs = 0;
    // The second request comes after the first one failed (and was reported): then Ctrl-C.
    onSync = (n) => {
      if (n === 2) stop.abort();
      return undefined;
    };
    const { code, out, err } = await tail(profile, stop, [], errTerminal);
    assert.equal(out, "");
    assert.equal(code, 1, err);
    const error = "keyroom: no sync succeeded: M_UNKNOWN (HTTP 500): internal error\n";
    if (!errTerminal) {
      // A script's stderr: the error's one line, nothing else.
      assert.equal(err, error);
      return;
    }
    const notice =
      /^keyroom: sync failed \(M_UNKNOWN \(HTTP 500\): internal error\), retrying in (\d+ms|1s)\n/;
    assert.match(err, notice);
    assert.equal(err.replace(notice, ""), error);
  });

for (const errTerminal of [true, false])
  test(`tail without --timeout keeps going while syncing fails${errTerminal ? ", saying so on stderr (a terminal) when it fails and when it works again" : ", silent on stderr that is not a terminal"}`, async () => {
    const profile = await profileOnServer(`q-${errTerminal}`);
    const stop = new AbortController();
    syncs = 0;
    // The server asks for a short wait (so the test does not sleep through real backoff).
    const limited: Answer = [429, { errcode: "M_LIMIT_EXCEEDED", error: "slow down", retry_after_ms: 5 }];
    const ok = (n: number): Answer => [200, { next_batch: `s${n}` }];
    // Three refusals alike (one line), a success, a different failure, a success, then Ctrl-C.
    const script: (Answer | undefined)[] = [limited, limited, limited, ok(4), INTERNAL_ERROR, ok(6), ok(7)];
    onSync = (n) => {
      if (n >= script.length) stop.abort();
      return script[n - 1] ?? ok(n);
    };
    const { code, out, err } = await tail(profile, stop, [], errTerminal);
    assert.equal(out, "");
    assert.equal(code, 0, err);
    assert.equal(syncs, script.length, "every failure retried");
    if (!errTerminal) {
      assert.equal(err, "");
      return;
    }
    const lines = err.split("\n");
    assert.equal(lines.pop(), "");
    assert.equal(lines.length, 4, err);
    assert.equal(lines[0], "keyroom: sync failed (M_LIMIT_EXCEEDED (HTTP 429): slow down), retrying in 5ms");
    assert.equal(lines[1], "keyroom: sync works again");
    assert.match(
      lines[2] ?? "",
      /^keyroom: sync failed \(M_UNKNOWN \(HTTP 500\): internal error\), retrying in (\d+ms|1s)$/,
    );
    assert.equal(lines[3], "keyroom: sync works again");
    assert.ok(!err.includes("secret-access-token"));
  });

/**
 * Counts, while `work` runs, the client stores (files) and crypto stores (SQLite) opened and those
 * whose `close()` has completed.
 */
async function countingStores<T>(
  work: (stores: { clientClosed: string[]; cryptoOpened: number; cryptoClosed: number }) => Promise<T>,
): Promise<T> {
  const stores = { clientClosed: [] as string[], cryptoOpened: 0, cryptoClosed: 0 };
  const fileClose = Object.getOwnPropertyDescriptor(FileClientStore.prototype, "close");
  const sqliteClose = Object.getOwnPropertyDescriptor(SqliteCryptoStore.prototype, "close");
  const sqliteOpen = Object.getOwnPropertyDescriptor(SqliteCryptoStore, "open");
  const closeFile = FileClientStore.prototype.close;
  const closeSqlite = SqliteCryptoStore.prototype.close;
  const openSqlite = SqliteCryptoStore.open.bind(SqliteCryptoStore);
  FileClientStore.prototype.close = async function (this: FileClientStore) {
    await closeFile.call(this);
    stores.clientClosed.push(this.path);
  };
  SqliteCryptoStore.prototype.close = async function (this: SqliteCryptoStore) {
    await closeSqlite.call(this);
    stores.cryptoClosed += 1;
  };
  SqliteCryptoStore.open = async (options) => {
    const store = await openSqlite(options);
    stores.cryptoOpened += 1;
    return store;
  };
  try {
    return await work(stores);
  } finally {
    if (fileClose) Object.defineProperty(FileClientStore.prototype, "close", fileClose);
    if (sqliteClose) Object.defineProperty(SqliteCryptoStore.prototype, "close", sqliteClose);
    if (sqliteOpen) Object.defineProperty(SqliteCryptoStore, "open", sqliteOpen);
  }
}

// --timeout and Ctrl-C count from the start: a server that does not answer while tail opens
// (keys upload, the room check) kept it running past --timeout until the request's own 60 s
// timeout, and a Ctrl-C then ended it with status 130 instead of a clean stop. Stopped then, tail
// ends the requests it waits on and returns once its client and stores are closed: it returned
// before, leaving them to close whenever the held request ended, and their last writes raced
// what the caller did next (this file's folder removal failed with ENOTEMPTY).
const heldSetUps = [
  { how: "Ctrl-C", held: "the room check", prefix: "/_matrix/client/v3/joined_rooms", encryption: false },
  { how: "--timeout", held: "the room check", prefix: "/_matrix/client/v3/joined_rooms", encryption: false },
  // Encryption starts with the new device's keys upload (the first /keys request).
  { how: "Ctrl-C", held: "the encryption start", prefix: "/_matrix/client/v3/keys/", encryption: true },
] as const;
for (const { how, held: what, prefix, encryption } of heldSetUps) {
  test(`tail stopped by ${how} while the server holds ${what}: status 0 at once, its stores closed when it returns`, async () => {
    const profile = await profileOnServer(`hang-${how}-${encryption}`, encryption);
    const stop = new AbortController();
    hangPrefix = prefix;
    const heldClosed = new Promise<void>((resolve) => {
      onHeldClosed = resolve;
    });
    let held = 0;
    onHang = () => {
      held += 1;
      if (how === "Ctrl-C") stop.abort();
    };
    try {
      await countingStores(async (stores) => {
        const room = encryption ? [] : ["!room:localhost"];
        const extra = how === "--timeout" ? [...room, "--timeout", "0.01"] : room;
        const result = await tail(profile, stop, extra);
        // Read as tail returns: nothing of its client may still be open, or written after.
        const clientClosed = [...stores.clientClosed];
        const { cryptoOpened, cryptoClosed } = stores;
        assert.equal(result.code, 0, result.err);
        assert.equal(result.out, "");
        assert.equal(result.err, "");
        assert.deepEqual(clientClosed, [join(profile, "accounts", CLIENT_STORE_FILE)]);
        if (encryption) assert.equal(cryptoOpened, 1);
        assert.equal(cryptoClosed, cryptoOpened, "the crypto store was closed");
      });
      if (how === "Ctrl-C") {
        assert.equal(held, 1);
        // Ended by tail (its client's requests aborted), not left to the request's own timeout.
        await heldClosed;
      }
    } finally {
      hangPrefix = undefined;
      onHang = () => {};
      onHeldClosed = () => {};
    }
  });
}

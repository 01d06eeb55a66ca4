/**
 * Kill-at-random-moments check shared by the quick and the long crash tests: a child process
 * saves numbered steps (see `crash-writer.fixture.ts`); we SIGKILL it, reopen the store and check
 * that the account, the inbound sessions and the sync token all stopped at the same step.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { SqliteCryptoStore } from "../sqlite-store.ts";

const SESSIONS_PER_STEP = 50;

async function runWriterFor(directory: string, killAfterMs: number): Promise<void> {
  const fixture = fileURLToPath(new URL("../crash-writer.fixture.ts", import.meta.url));
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", fixture, directory], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`crash writer exited early (${code})`)));
  });
  await new Promise((resolve) => setTimeout(resolve, killAfterMs));
  child.kill("SIGKILL");
  await exited;
}

/** Returns the step the store reached; throws if its parts disagree. */
export async function killAndCheck(
  directory: string,
  killAfterMs: number,
  previousStep: number,
): Promise<number> {
  await runWriterFor(directory, killAfterMs);
  const store = await SqliteCryptoStore.open({ userId: "@alice:example.org", directory });
  try {
    const token = await store.getNextBatch();
    const step = token === undefined ? 0 : Number(token.slice(1));
    const account = await store.loadAccount();
    const accountStep = (account?.pickle as { readonly step?: number } | undefined)?.step;
    assert.equal(accountStep ?? 0, step, "account and sync token disagree");
    const { total } = await store.countInboundGroupSessions();
    assert.equal(total, step * SESSIONS_PER_STEP, "sessions and sync token disagree");
    // The writer reported at least one commit in this run, so the step must have moved on.
    assert.ok(step > previousStep, "a committed step was lost");
    return step;
  } finally {
    await store.close();
  }
}

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { killAndCheck } from "./test-support/crash-support.ts";

it("SQLite store: SIGKILL at 40 random moments never leaves a partial step", async () => {
  const directory = mkdtempSync(join(tmpdir(), "keyroom-crash-"));
  try {
    let step = 0;
    for (let i = 0; i < 40; i++)
      step = await killAndCheck(directory, 20 + Math.floor(Math.random() * 300), step);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

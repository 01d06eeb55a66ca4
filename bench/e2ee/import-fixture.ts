// Writes the e2ee section's import fixture (an export file of COUNT room keys, default 100 000, and
// the probe event) to FILE, so that the import can be run alone, a fresh process per run, as the
// section runs it:
//   node --conditions=source --import tsx bench/e2ee/import-fixture.ts FILE [COUNT]
//   node --conditions=source --import tsx bench/e2ee/import-child.ts sqlite FILE "$(mktemp -d)"
import { writeFileSync } from "node:fs";
import { buildExportFile } from "./export-file.ts";
import { makeFakeDevices } from "./fake-devices.ts";

const [file, count = "100000"] = process.argv.slice(2);
if (file === undefined) throw new Error("usage: import-fixture.ts FILE [COUNT]");
// The section's senders at full scale: 250 users with 4 devices each.
writeFileSync(file, JSON.stringify(buildExportFile(Number(count), makeFakeDevices(250, 4))));

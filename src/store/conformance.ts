/**
 * The shared `CryptoStore` conformance suite. Every back end's test file calls
 * `runCryptoStoreConformance` with a target; a custom store can do the same:
 *
 *   runCryptoStoreConformance({
 *     name: "my store",
 *     createFixture: async () => ({ open: (o) => MyStore.open({ ...o, location }), cleanup: async () => {} }),
 *     encrypted: true,
 *   });
 *
 * It registers `node:test` suites covering every method, the atomicity of `saveChanges`, reopen
 * persistence, identity mismatch, the one-open-at-a-time lock, wrong keys, a 100 000-session import
 * and the bounds on records anyone can add (withheld notices, Olm message hashes, rival room keys).
 */
import { describe } from "node:test";
import { boundTests } from "./conformance/bounds.ts";
import { deviceTests } from "./conformance/devices.ts";
import { inboundGroupSessionTests } from "./conformance/inbound-group-sessions.ts";
import { olmSessionTests } from "./conformance/olm-sessions.ts";
import { openingTests } from "./conformance/opening.ts";
import { outboundGroupSessionTests } from "./conformance/outbound-group-sessions.ts";
import { rivalRoomKeyTests } from "./conformance/rival-room-keys.ts";
import { saveChangesTests } from "./conformance/save-changes.ts";
import { secretsAndStateTests } from "./conformance/secrets-and-state.ts";
import { type ConformanceTarget, conformanceSuite } from "./conformance/target.ts";

export { sample } from "./conformance/samples.ts";
export type { ConformanceFixture, ConformanceOpenOptions, ConformanceTarget } from "./conformance/target.ts";

export function runCryptoStoreConformance(target: ConformanceTarget): void {
  const suite = conformanceSuite(target);
  describe(`CryptoStore conformance: ${target.name}`, () => {
    openingTests(suite);
    saveChangesTests(suite);
    olmSessionTests(suite);
    inboundGroupSessionTests(suite);
    outboundGroupSessionTests(suite);
    deviceTests(suite);
    secretsAndStateTests(suite);
    boundTests(suite);
    rivalRoomKeyTests(suite);
  });
}

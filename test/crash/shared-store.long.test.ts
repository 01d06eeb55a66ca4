// Two processes on one store (issue 13), SIGKILLed at random points: each run starts a victim and
// a partner on the same crypto store, both syncing, decrypting and sending, taking turns on the
// store's lease (see harness.ts, `pair`). The checks are the kill loop's: no Megolm index used
// twice (the peer would refuse the second message as a replay), no one-time key uploaded twice or
// claimed twice, no Olm session forked (every room key still arrives both ways), no key lost, one
// device identity throughout. The long run (npm run test:long): 60 kills, KEYROOM_CRASH_KILLS to change.
import { sharedStoreSuite } from "./shared-store-suite.ts";

sharedStoreSuite(60, 6);

// Loaded by scripts/run-tests.mjs before every test file: property tests that name no seed of
// their own run with this fixed one, so a failure in CI replays exactly (KEYROOM_FC_SEED picks
// another, to explore). A test's own `{ seed }` still wins.
import fc from "fast-check";

const seed = Number(process.env.KEYROOM_FC_SEED ?? 20261207);
fc.configureGlobal({ ...fc.readConfigureGlobal(), seed });

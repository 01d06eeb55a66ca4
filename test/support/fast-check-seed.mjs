// Loaded by scripts/run-tests.mjs before every test file: property tests that name no seed of
// their own run with this fixed one, so a failure in CI replays exactly (KEYROOM_FC_SEED picks
// another, to explore). A test's own `{ seed }` still wins. Plain JavaScript, and nothing if
// fast-check is not found: processes the tests fork (a bundler's workers) inherit the flag.
const seed = Number(process.env.KEYROOM_FC_SEED ?? 20261207);
try {
  const { default: fc } = await import("fast-check");
  fc.configureGlobal({ ...fc.readConfigureGlobal(), seed });
} catch {
  // Not a test process.
}

// What docs/bots.md promises of the `keyroom/appservice` entry: the registration's error class
// (for `instanceof`) and the bounds it names, imported as an application would.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  MAX_NAMESPACE_REGEX_LENGTH,
  MAX_NAMESPACES_PER_KIND,
  MAX_TXN_EVENTS,
  parseRegistration,
  RegistrationError,
} from "keyroom/appservice";

describe("keyroom/appservice entry", () => {
  it("exports RegistrationError: a bad registration file is an instance, with its code", () => {
    const failure = (text: string) => {
      try {
        parseRegistration(text);
      } catch (e) {
        assert.ok(e instanceof RegistrationError, `not a RegistrationError: ${String(e)}`);
        return e.code;
      }
      assert.fail("parsed");
    };
    assert.equal(failure("a: [unclosed"), "NOT_PARSEABLE");
    assert.equal(failure("id: 3"), "INVALID");
  });

  it("exports the bounds docs/bots.md lists, with their documented values", () => {
    assert.equal(MAX_TXN_EVENTS, 10_000);
    assert.equal(MAX_NAMESPACES_PER_KIND, 100);
    assert.equal(MAX_NAMESPACE_REGEX_LENGTH, 1024);
  });
});

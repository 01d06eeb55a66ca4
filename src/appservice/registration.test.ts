import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_NAMESPACE_REGEX_LENGTH, Namespaces, RegistrationError } from "../wire/appservice.ts";
import { generateRegistration, parseRegistration, registrationToYaml } from "./registration.ts";

describe("appservice registration", () => {
  it("generates fresh tokens, exclusive namespaces and the E2EE flags, and round-trips through YAML", () => {
    const reg = generateRegistration({
      id: "bridge",
      url: "http://127.0.0.1:9000",
      senderLocalpart: "bridgebot",
      serverName: "example.org",
      userPrefix: "_br_",
      aliasPrefix: "_br_",
    });
    const other = generateRegistration({
      id: "b",
      url: null,
      senderLocalpart: "b",
      serverName: "example.org",
    });
    assert.notEqual(reg.as_token, reg.hs_token);
    assert.notEqual(reg.as_token, other.as_token);
    assert.ok(reg.as_token.length >= 43);
    assert.equal(reg.receive_ephemeral, true);
    assert.equal(reg["de.sorunome.msc2409.push_ephemeral"], true);
    assert.equal(reg["org.matrix.msc3202"], true);
    assert.equal(reg["io.element.msc4190"], true, "device management without UIA (MSC4190)");
    const yaml = registrationToYaml(reg);
    assert.match(yaml, /org\.matrix\.msc3202: true/);
    assert.deepEqual(parseRegistration(yaml), reg);
    const ns = new Namespaces(reg);
    assert.ok(ns.matchesUser("@_br_alice:example.org", true));
    // The server name's dot is literal.
    assert.ok(!ns.matchesUser("@_br_alice:exampleXorg"));
    assert.ok(!ns.matchesUser("@alice:example.org"));
    assert.ok(ns.matchesAlias("#_br_room:example.org", true));
  });

  it("reads JSON too, and matches namespace regexes from the start of the ID, as Synapse does", () => {
    const reg = parseRegistration(
      JSON.stringify({
        id: "x",
        url: null,
        as_token: "a",
        hs_token: "h",
        sender_localpart: "bot",
        namespaces: {
          users: [{ exclusive: false, regex: "@irc_.*" }],
          rooms: [{ exclusive: true, regex: "!abc" }],
        },
      }),
    );
    const ns = new Namespaces(reg);
    assert.ok(ns.matchesUser("@irc_bob:server"));
    assert.ok(!ns.matchesUser("@x@irc_bob:server"));
    assert.ok(!ns.matchesUser("@irc_bob:server", true), "not exclusive");
    assert.ok(ns.matchesRoom("!abc:server", true));
  });

  it("refuses bad files with typed errors", () => {
    const base = {
      id: "x",
      url: null,
      as_token: "a",
      hs_token: "h",
      sender_localpart: "bot",
      namespaces: {},
    };
    const bad: [string, RegistrationError["code"]][] = [
      ["id: [unclosed", "NOT_PARSEABLE"],
      ["just a string", "INVALID"],
      [JSON.stringify({ ...base, as_token: "" }), "INVALID"],
      [JSON.stringify({ ...base, url: "not a url" }), "INVALID"],
      [JSON.stringify({ ...base, sender_localpart: "Bad Name" }), "INVALID"],
      [JSON.stringify({ ...base, namespaces: { users: [{ exclusive: true, regex: "(" }] } }), "BAD_REGEX"],
      [
        JSON.stringify({
          ...base,
          namespaces: { users: [{ exclusive: true, regex: "a".repeat(MAX_NAMESPACE_REGEX_LENGTH + 1) }] },
        }),
        "INVALID",
      ],
      [
        JSON.stringify({
          ...base,
          namespaces: { users: new Array(101).fill({ exclusive: true, regex: "@a" }) },
        }),
        "INVALID",
      ],
      // YAML aliases could blow up the parsed size: refused.
      ["a: &x [1]\nb: *x", "NOT_PARSEABLE"],
    ];
    for (const [text, code] of bad) {
      assert.throws(
        () => parseRegistration(text),
        (e: unknown) => e instanceof RegistrationError && e.code === code,
        text.slice(0, 60),
      );
    }
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Router } from "./router.ts";

describe("Router", () => {
  const r = new Router();
  const h = () => ({ json: {} });
  r.client("GET", "/rooms/:room/state/:type/:key", h);
  r.client("PUT", "/rooms/:room/state/:type/:key", h);
  r.add("GET", "/_matrix/client/versions", h, "none");

  it("decodes parameters and registers v3 and r0", () => {
    const m = r.match("GET", "/_matrix/client/v3/rooms/!a%3Ab/state/m.room.member/%40u%3Ax");
    assert.deepEqual(m.params, { room: "!a:b", type: "m.room.member", key: "@u:x" });
    assert.equal(r.match("GET", "/_matrix/client/r0/rooms/!a/state/t/k").auth, "required");
    assert.equal(r.match("GET", "/_matrix/client/versions").auth, "none");
  });
  it("an empty final segment is the empty state key", () => {
    assert.equal(r.match("GET", "/_matrix/client/v3/rooms/!a/state/t/").params.key, "");
  });
  it("unknown paths are 404 and wrong methods 405, both M_UNRECOGNIZED", () => {
    assert.throws(() => r.match("GET", "/_matrix/client/v3/nothing"), {
      status: 404,
      code: "M_UNRECOGNIZED",
    });
    assert.throws(() => r.match("POST", "/_matrix/client/v3/rooms/!a/state/t/k"), {
      status: 405,
      code: "M_UNRECOGNIZED",
    });
    assert.throws(() => r.match("GET", "/_matrix/client/v3/rooms//state/t/k"), { status: 404 });
  });
  it("malformed percent-encoding is a 400, not a crash", () => {
    assert.throws(() => r.match("GET", "/_matrix/client/v3/rooms/%E0%A4%A/state/t/k"), { status: 400 });
  });
});

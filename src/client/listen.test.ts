import assert from "node:assert/strict";
import { createServer } from "node:http";
import { type AddressInfo, connect } from "node:net";
import { describe, it } from "node:test";
import { limitConnections } from "./listen.ts";
import { holdsAtMostConnections } from "./test-support/sockets.ts";

describe("limitConnections", () => {
  it("drops a connection over the bound at once, and serves again once others have gone", async () => {
    const server = createServer((_req, res) => res.end("ok"));
    limitConnections(server, 5);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await holdsAtMostConnections(
        url,
        5,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        /^HTTP\/1\.1 200 /,
      );
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("closes a connection that starts no request within the idle time, never one whose request is being handled", async () => {
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = () => {};
    const handling = new Promise<void>((resolve) => {
      started = resolve;
    });
    const server = createServer((_req, res) => {
      started();
      void released.then(() => res.end("done"));
    });
    limitConnections(server, 10, 50);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const busy = connect(port, "127.0.0.1", () => busy.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
      let busyClosed = false;
      let answer = "";
      busy.on("close", () => {
        busyClosed = true;
      });
      busy.on("data", (d: Buffer) => {
        answer += d.toString();
      });
      busy.on("error", () => undefined);
      await handling;
      // Connected after the request started: by the time it is closed for idling, the busy
      // connection has been silent for longer.
      const idle = connect(port, "127.0.0.1");
      idle.on("error", () => undefined);
      await new Promise((resolve) => idle.once("close", resolve));
      assert.equal(busyClosed, false, "the connection whose request is being handled stays");
      release();
      await new Promise((resolve) => busy.once("data", resolve));
      assert.match(answer, /done$/);
      busy.destroy();
    } finally {
      release();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  KEY_ANSWER_WINDOW_MS,
  KeyAnswerRate,
  MAX_KEY_ANSWER_RATE_DEVICES,
  MAX_KEY_ANSWERS_PER_DEVICE,
  MAX_KEY_ANSWERS_PER_SESSION,
} from "./answer-rate.ts";

describe("KeyAnswerRate", () => {
  const setup = () => {
    const clock = { t: 1_000 };
    return { clock, rate: new KeyAnswerRate(() => clock.t) };
  };
  const answerAll = (rate: KeyAnswerRate, device: string, sessions: number) => {
    let answered = 0;
    for (let i = 0; i < sessions; i++) {
      if (!rate.mayAnswer("@b:hs", device, `!room${i}:hs`, `s${i}`)) continue;
      rate.answered("@b:hs", device, `!room${i}:hs`, `s${i}`);
      answered++;
    }
    return answered;
  };

  it("answers a device that lost the key of every room once a room, up to MAX_KEY_ANSWERS_PER_DEVICE", () => {
    const { rate } = setup();
    // Far more rooms than one session's bound: each room's first request is answered.
    assert.ok(MAX_KEY_ANSWERS_PER_DEVICE > 10 * MAX_KEY_ANSWERS_PER_SESSION);
    assert.equal(answerAll(rate, "B2", MAX_KEY_ANSWERS_PER_DEVICE + 20), MAX_KEY_ANSWERS_PER_DEVICE);
    // Another device is counted apart.
    assert.equal(answerAll(rate, "B3", 5), 5);
  });

  it("bounds one session's answers, and counts again once the window is over", () => {
    const { clock, rate } = setup();
    let answered = 0;
    for (let i = 0; i < MAX_KEY_ANSWERS_PER_SESSION + 4; i++) {
      if (!rate.mayAnswer("@b:hs", "B2", "!r:hs", "s")) continue;
      rate.answered("@b:hs", "B2", "!r:hs", "s");
      answered++;
    }
    assert.equal(answered, MAX_KEY_ANSWERS_PER_SESSION);
    // The same session ID in another room is another session.
    assert.equal(rate.mayAnswer("@b:hs", "B2", "!other:hs", "s"), true);
    clock.t += KEY_ANSWER_WINDOW_MS;
    assert.equal(rate.mayAnswer("@b:hs", "B2", "!r:hs", "s"), true);
  });

  it(`keeps counts for MAX_KEY_ANSWER_RATE_DEVICES (${MAX_KEY_ANSWER_RATE_DEVICES}) devices, the oldest window forgotten first`, () => {
    const { rate } = setup();
    for (let i = 0; i < MAX_KEY_ANSWERS_PER_SESSION; i++) rate.answered("@b:hs", "OLD", "!r:hs", "s");
    for (let d = 0; d < MAX_KEY_ANSWER_RATE_DEVICES - 1; d++) rate.answered("@b:hs", `D${d}`, "!r:hs", "s");
    assert.equal(rate.mayAnswer("@b:hs", "OLD", "!r:hs", "s"), false);
    rate.answered("@b:hs", "NEW", "!r:hs", "s");
    assert.equal(rate.mayAnswer("@b:hs", "OLD", "!r:hs", "s"), true);
  });
});

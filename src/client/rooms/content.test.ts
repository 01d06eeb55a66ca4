import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  editContent,
  htmlContent,
  htmlToPlainText,
  reactionContent,
  textContent,
  withRelations,
} from "./content.ts";

describe("message content", () => {
  it("builds HTML messages with a plain fallback", () => {
    assert.deepEqual(htmlContent("<b>hi</b> &amp; <i>bye</i><br>x"), {
      msgtype: "m.text",
      body: "hi & bye\nx",
      format: "org.matrix.custom.html",
      formatted_body: "<b>hi</b> &amp; <i>bye</i><br>x",
    });
    assert.equal(htmlToPlainText("&#x1F600;&#128512;&bogus;"), "😀😀&bogus;");
  });

  it("adds replies, threads and mentions", () => {
    assert.deepEqual(withRelations(textContent("r"), { replyTo: "$p" })["m.relates_to"], {
      "m.in_reply_to": { event_id: "$p" },
    });
    assert.deepEqual(withRelations(textContent("t"), { threadRootId: "$root" })["m.relates_to"], {
      rel_type: "m.thread",
      event_id: "$root",
      is_falling_back: true,
      "m.in_reply_to": { event_id: "$root" },
    });
    const inThreadReply = withRelations(textContent("t"), {
      threadRootId: "$root",
      replyTo: "$q",
      mentions: { userIds: ["@u:hs"] },
    });
    assert.deepEqual(inThreadReply["m.relates_to"], {
      rel_type: "m.thread",
      event_id: "$root",
      is_falling_back: false,
      "m.in_reply_to": { event_id: "$q" },
    });
    assert.deepEqual(inThreadReply["m.mentions"], { user_ids: ["@u:hs"] });
  });

  it("builds edits with a fallback body and reactions", () => {
    assert.deepEqual(editContent("$e", textContent("fixed")), {
      msgtype: "m.text",
      body: "* fixed",
      "m.new_content": { msgtype: "m.text", body: "fixed" },
      "m.relates_to": { rel_type: "m.replace", event_id: "$e" },
    });
    assert.deepEqual(reactionContent("$e", "👍"), {
      "m.relates_to": { rel_type: "m.annotation", event_id: "$e", key: "👍" },
    });
  });
});

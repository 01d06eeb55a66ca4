import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { htmlToPlainText } from "../client/index.ts";
import { escapeMarkdown, renderMarkdown } from "./markdown.ts";

test("Markdown renders to Matrix HTML; one paragraph has no <p>", () => {
  assert.deepEqual(renderMarkdown("**hi** _there_"), {
    body: "**hi** _there_",
    html: "<strong>hi</strong> <em>there</em>",
  });
  assert.match(renderMarkdown("- a\n- b").html, /^<ul>\n<li>a<\/li>\n<li>b<\/li>\n<\/ul>$/);
});

test("raw HTML and dangerous links never pass through", () => {
  const { html } = renderMarkdown("<img src=x onerror=alert(1)> <script>x</script> [a](javascript:alert(1))");
  assert.doesNotMatch(html, /<img|<script|href="javascript/);
  assert.match(html, /&lt;script&gt;/);
  assert.equal(
    renderMarkdown("![cat](https://example.org/cat.png)").html,
    '<a href="https://example.org/cat.png">cat</a>',
  );
  assert.equal(
    renderMarkdown("![cat](mxc://example.org/abc)").html,
    '<img src="mxc://example.org/abc" alt="cat">',
  );
});

test("escapeMarkdown: a user's text never becomes a hidden link, an image or formatting", () => {
  const typed =
    "[Vote here](https://evil.example) ![x](mxc://evil.example/px) # big\n&#x202e; **b** _i_ `c` ~~s~~ | t | <b> \\[a](b)";
  const { html, body } = renderMarkdown(`Poll: ${escapeMarkdown(typed)}`);
  // The bare URL is a link to itself (linkify), nothing else is a tag but the line break.
  const bare = '<a href="https://evil.example">https://evil.example</a>';
  assert.doesNotMatch(html.replace(bare, ""), /<(?!br>)/, html);
  assert.equal(htmlToPlainText(html.replaceAll("<br>\n", "<br>")), `Poll: ${typed}`);
  assert.equal(
    escapeMarkdown("Lunch? Pizza, soup (or salad)!"),
    "Lunch? Pizza, soup (or salad)!",
    "plain text stays",
  );
  assert.match(body, /^Poll: \\\[Vote here\\\]/);
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.string({ unit: "grapheme-ascii", maxLength: 8 }),
          fc.constantFrom("\n", " ", "-", "1.", "="),
        ),
        { maxLength: 30 },
      ),
      (parts) => {
        const s = parts.join("");
        const out = renderMarkdown(escapeMarkdown(s)).html;
        assert.doesNotMatch(out, /<(img|em|strong|s|del|table|h[1-6]|ul|ol|blockquote|hr)\b/, out);
        // Links only where linkify found a bare URL: the text shown is where it goes.
        for (const [, href, text] of out.matchAll(/<a href="([^"]*)">([^<]*)<\/a>/g))
          assert.ok(href?.endsWith(text ?? "\u0000"), out);
        assert.equal(
          out.match(/<a /g)?.length ?? 0,
          [...out.matchAll(/<a href="([^"]*)">([^<]*)<\/a>/g)].length,
        );
      },
    ),
    { seed: 1207, numRuns: 500 },
  );
});

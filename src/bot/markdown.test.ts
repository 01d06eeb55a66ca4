import assert from "node:assert/strict";
import { test } from "node:test";
import { renderMarkdown } from "./markdown.ts";

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

// Markdown → Matrix HTML for replies. markdown-it (CommonMark, widely used and maintained) with raw
// HTML turned off: every `<` a user or skill writes is escaped, so the output holds only the tags
// markdown-it itself makes, all on the spec's list of allowed tags (spec §11.2.1.1). Its link check
// drops `javascript:`, `vbscript:`, `file:` and `data:` URLs. Matrix clients only load `mxc://`
// images, so any other image becomes a plain link.
import MarkdownIt from "markdown-it";
import { htmlToPlainText } from "../client/index.ts";

const md = new MarkdownIt({ html: false, linkify: true, breaks: true });
md.renderer.rules.image = (tokens, idx, options, env, self) => {
  const token = tokens[idx];
  const src = String(token?.attrGet("src") ?? "");
  const alt = self.renderInlineAsText(token?.children ?? [], options, env);
  if (src.startsWith("mxc://")) {
    return `<img src="${md.utils.escapeHtml(src)}" alt="${md.utils.escapeHtml(alt)}">`;
  }
  return `<a href="${md.utils.escapeHtml(src)}">${md.utils.escapeHtml(alt || src)}</a>`;
};

export interface RenderedMarkdown {
  /** The plain-text body (the Markdown source as written: readable without a renderer). */
  body: string;
  /** `formatted_body` (`org.matrix.custom.html`). */
  html: string;
}

/** Renders Markdown for an `m.room.message`: HTML without a trailing newline, the source as body. */
export function renderMarkdown(source: string): RenderedMarkdown {
  let html = md.render(source).trimEnd();
  // One paragraph needs no <p> around it (what Element sends for one line).
  const single = /^<p>([\s\S]*)<\/p>$/.exec(html);
  if (single?.[1] !== undefined && !single[1].includes("<p>")) html = single[1];
  return { body: source, html };
}

/**
 * `text` (what a user typed) made safe to put in a skill's Markdown: the characters that start
 * links, images, emphasis, code, headings, tables and entities are backslash-escaped (raw HTML is
 * escaped anyway), so a user's `[Vote here](https://…)` or `![x](mxc://…)` stays literal text
 * rather than a link or image in the bot's message, and lines starting with `-`, `+`, `=` or `1.`
 * are no list items or headings. Other punctuation is left alone, since the message's body is the
 * Markdown source (what clients without HTML show). A bare URL is still made a link, showing where
 * it goes; a line indented by four spaces shows as code.
 */
export function escapeMarkdown(text: string): string {
  return (
    text
      .replace(/[\\`*_[\]<>&#|~]/g, "\\$&")
      // At a line's start: list markers, and setext heading underlines (`===`, `---`).
      .replace(/^([ \t]*)([-+=])/gm, "$1\\$2")
      .replace(/^([ \t]*\d+)([.)])/gm, "$1\\$2")
  );
}

/** The plain text of rendered Markdown (what a client without HTML shows). */
export function markdownToPlainText(source: string): string {
  return htmlToPlainText(renderMarkdown(source).html);
}

// The generated `help` command (on unless `BotOptions.help` is false): the list of commands with
// their usage and help line, or one command's. Owner-only commands are shown to owners only.
import type { Command, Handlers } from "../handlers.ts";
import { arg, quoteInput } from "./args.ts";

export function addHelpCommand(handlers: Handlers): void {
  const { prefix } = handlers;
  handlers.addCommand(
    "help",
    { help: "list the commands, or explain one", args: { command: arg.string().optional() } },
    async (ctx, { command }) => {
      const wanted = (command ?? "").replace(new RegExp(`^${escapeRegex(prefix)}`), "").toLowerCase();
      if (wanted !== "") {
        const cmd = handlers.command(wanted);
        if (cmd === undefined || (cmd.opts.ownerOnly && !ctx.isOwner))
          return ctx.notice(`No command "${quoteInput(wanted)}". Try ${prefix}help.`);
        return ctx.notice(handlers.usage(cmd) + (cmd.opts.help ? `\n${cmd.opts.help}` : ""));
      }
      const lines = handlers.commandNames
        .map((n) => handlers.named(n))
        .filter((c): c is Command => c !== undefined && (!c.opts.ownerOnly || ctx.isOwner))
        .map((c) => `${handlers.usage(c)}${c.opts.help ? ` — ${c.opts.help}` : ""}`);
      return ctx.notice(`Commands:\n${lines.join("\n")}`);
    },
    "builtin",
  );
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// A skill: a name and a setup function that registers handlers. Edit it while
// `keyroom bot run --watch` runs and the bot reloads it.
export default {
  name: "echo",
  setup(bot) {
    // A notice: bots do not answer notices, so two echo bots never echo each other.
    bot.command("echo", { args: { text: bot.arg.rest() }, help: "say TEXT back" }, (ctx, { text }) =>
      ctx.notice(text),
    );
  },
};

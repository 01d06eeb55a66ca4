// `keyroom/bot`: the bot framework, on the public client API. See docs/bots.md.

export {
  ANSWER_WINDOW_MS,
  AnswerLimitError,
  type AnswerLimits,
  DEFAULT_ANSWERS_PER_ROOM_PER_MINUTE,
  ERROR_NOTICE_INTERVAL_MS,
} from "./answer-limits.ts";
export { Bot } from "./bot.ts";
export {
  type ArgSpec,
  type ArgSpecs,
  type ArgValues,
  arg,
  MAX_ARG_LENGTH,
  MAX_DURATION_MS,
  type ParseResult,
  parseArgs,
  parseDuration,
  tokenize,
  usageOf,
} from "./commands/args.ts";
export {
  type BotConfig,
  BotConfigError,
  type BotConfigInput,
  botConfigSchema,
  CONFIG_FILE,
  parseConfig,
  readConfig,
  userIdSchema,
  validateConfig,
} from "./config.ts";
export {
  CommandContext,
  ContextError,
  EventContext,
  MAX_SENDS_PER_EVENT,
  RoomSender,
  type SendGate,
} from "./context.ts";
export { MAX_COMMAND_BODY, MAX_MENTION_PILLS } from "./dispatch.ts";
export { MAX_HANDLERS } from "./handlers.ts";
export {
  BotInitError,
  ECHO_SKILL,
  type InitBotOptions,
  type InitializedBot,
  initBotDir,
  writeBotFiles,
} from "./init.ts";
export {
  DEFAULT_LATE_EVENT_MAX_DELAY_MS,
  LATE_NOTICE_INTERVAL_MS,
  type LateEventOptions,
  MAX_AWAITED_EVENTS,
} from "./late-events.ts";
export {
  type LocalStore,
  MAX_HANDLED_EVENTS,
  MAX_LOCAL_VALUE_BYTES,
  MemoryLocalStore,
  SqliteLocalStore,
} from "./local-store.ts";
export { type BotLoggerOptions, createBotLogger, defaultLogFormat, type LogLevel } from "./logger.ts";
export { escapeMarkdown, markdownToPlainText, type RenderedMarkdown, renderMarkdown } from "./markdown.ts";
export {
  type AccessLists,
  type BotOptions,
  type CommandOptions,
  DEFAULT_INVITES_PER_INVITER_PER_HOUR,
  DEFAULT_MAX_ROOMS_ON_INVITE,
  type Handler,
  type HandlerRegistry,
  type InviteLimits,
  type InvitePolicy,
  type MemberChange,
  type Middleware,
  type ReactionContext,
  type ReactionContextExtra,
  type ReactionOptions,
  type ReactionRemovedContext,
  type ReactionRemovedContextExtra,
  type RedactionContext,
  type RedactionContextExtra,
  type WebhookRequest,
} from "./options.ts";
export { MAX_RATE_LIMITED_USERS, RateLimiter, type RateLimitOptions } from "./rate-limit.ts";
export {
  MAX_REMEMBERED_ID_LENGTH,
  MAX_REMEMBERED_REACTION_KEY,
  MAX_REMEMBERED_REACTIONS,
  MAX_REMEMBERED_REDACTIONS,
} from "./reaction-records.ts";
export {
  botOptionsFrom,
  RELOAD_DEBOUNCE_MS,
  type RunBotOptions,
  type RunningBot,
  runBotDir,
} from "./runner.ts";
export { type JobInfo, MAX_JOBS, MAX_SCHEDULER_SLEEP_MS, Scheduler, SchedulerError } from "./scheduler.ts";
export {
  type BotAccountOptions,
  BotStartError,
  type BotStartErrorCode,
  botPaths,
  type OpenedBotClient,
  openBotClient,
  resetBot,
} from "./session.ts";
export { defineSkill, installSkill, loadSkill, type Skill, type SkillApi, SkillError } from "./skills.ts";
export {
  BotState,
  MAX_STATE_BYTES,
  STATE_EVENT_PREFIX,
  type StateDefinition,
  StateError,
  type StateHandle,
  StateSlot,
} from "./state.ts";
export type { SasToCompare } from "./verify.ts";
export {
  MAX_WEBHOOK_BODY_BYTES,
  MIN_WEBHOOK_SECRET_LENGTH,
  startWebhookServer,
  WebhookSecretError,
  type WebhookServer,
  type WebhookServerOptions,
} from "./webhooks.ts";

// Skills: modules whose default export is `{ name, setup(api) }`. `setup` registers handlers on
// `api` (the bot's registry scoped to the skill), so a skill can be unloaded and loaded again
// (`keyroom bot run --watch`) without restarting the client. Skills may be JavaScript or
// TypeScript; TypeScript needs a loader (tsx) on Node versions without type stripping.
import { pathToFileURL } from "node:url";
import type { Logger } from "../index.ts";
import type { Bot } from "./bot.ts";
import { arg } from "./commands/args.ts";
import type { HandlerRegistry } from "./options.ts";

export interface SkillApi extends HandlerRegistry {
  /** The bot: its client, state, local store and `room(roomId)` sender. */
  readonly bot: Bot;
  /** `settings.<skill name>` from the config (unchecked: validate what you read). */
  readonly settings: unknown;
  readonly logger: Logger;
  /** Argument constructors, so plain-JavaScript skills need no import. */
  readonly arg: typeof arg;
}

export interface Skill {
  /** Unique in the bot; also the key of its settings. */
  name: string;
  setup(api: SkillApi): void | Promise<void>;
}

/** Identity function that types a skill (`export default defineSkill({ ... })`). */
export function defineSkill(skill: Skill): Skill {
  return skill;
}

export class SkillError extends Error {
  override readonly name = "SkillError";
}

function isSkill(v: unknown): v is Skill {
  return (
    typeof v === "object" &&
    v !== null &&
    typeof (v as Skill).name === "string" &&
    /^[A-Za-z0-9_-]{1,64}$/.test((v as Skill).name) &&
    typeof (v as Skill).setup === "function"
  );
}

let tsxRegistered = false;

/** Imports a skill module; `generation` > 0 loads a fresh copy (ESM caches by URL). */
export async function loadSkill(file: string, generation = 0): Promise<Skill> {
  const url = pathToFileURL(file).href + (generation > 0 ? `?v=${generation}` : "");
  let mod: { default?: unknown };
  try {
    mod = (await import(url)) as { default?: unknown };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ERR_UNKNOWN_FILE_EXTENSION" && /\.[cm]?ts$/.test(file) && !tsxRegistered) {
      await registerTypeScript(file);
      return loadSkill(file, generation);
    }
    throw new SkillError(`${file}: ${(e as Error).message}`, { cause: e });
  }
  if (!isSkill(mod.default)) {
    throw new SkillError(
      `${file}: the default export is not a skill (export default { name, setup(api) { … } })`,
    );
  }
  return mod.default;
}

async function registerTypeScript(file: string): Promise<void> {
  try {
    const api = (await import("tsx/esm/api")) as { register: () => unknown };
    api.register();
    tsxRegistered = true;
  } catch {
    throw new SkillError(
      `${file}: TypeScript skills need tsx (npm install tsx), or write the skill in JavaScript`,
    );
  }
}

/** Runs a skill's setup against the bot, its handlers scoped to the skill's name. */
export async function installSkill(bot: Bot, skill: Skill, settings: unknown, logger: Logger): Promise<void> {
  const api: SkillApi = { ...bot.scope(skill.name), bot, settings, logger, arg };
  try {
    await skill.setup(api);
  } catch (e) {
    bot.removeScope(skill.name);
    throw new SkillError(`skill ${skill.name}: setup failed: ${(e as Error).message}`, { cause: e });
  }
}

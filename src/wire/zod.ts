// The schema library of every wire type and stored record: zod's functional build (`zod/mini`),
// which bundlers tree-shake to the parts used, unlike classic zod's method-chaining schemas (which
// carry all of zod into a browser bundle). Modules import it as `import * as z from ".../wire/zod.ts"`.
//
// Classic zod installs its English messages on first use; zod/mini has none of its own. They are
// installed here, once, unless the application already chose a locale, so issues read the same
// ("Invalid input: expected string, received number"). This file is listed in package.json's
// `sideEffects`, so bundlers keep the line below although nothing is imported by name from here.
import { config, globalConfig } from "zod/v4/core";
import en from "zod/v4/locales/en.js";

if (!globalConfig.localeError) config(en());

export * from "zod/mini";

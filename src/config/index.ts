// The configuration: environment variables, a `.env` read first (README, "Configuration").
//   variables.ts  the table: one entry per variable (parser, default, secret, help)
//   parsers.ts    the parsers the table uses
//   parse.ts      parseConfig: the table plus the rules between variables, to a typed Config
//   types.ts      Config and its parts
//   env.ts        loadEnv: .env plus the real environment
//   secrets.ts    the secrets the log redactor must know
//   docs.ts       the README's table, generated from the table (npm run docs:config)

export { loadEnv, type Env } from "./env.js";
export {
  parseConfig,
  normaliseEndpoint,
  EMBEDDED_ACCESS_KEY_ID,
  EMBEDDED_OUTPUT_LOCATION,
  EMBEDDED_SECRET_ACCESS_KEY,
  EMBEDDED_STORAGE_BUCKET,
  type ConfigResult,
} from "./parse.js";
export { parseS3Location, SSL_MODES } from "./parsers.js";
export { passwordOf, secretsOf, storePasswordsOf } from "./secrets.js";
export { CONFIG_VARIABLES, EXTRA_VARIABLES, GROUPS, VARIABLES, VARIABLE_LIST, type VariableName } from "./variables.js";
export type * from "./types.js";

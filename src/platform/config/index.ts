export { defineOptions } from "./options.js";
export type {
  BoolOption,
  DurationOption,
  EnumOption,
  FloatOption,
  HelpOptions,
  IntOption,
  ListOption,
  OptionParser,
  OptionSpec,
  OptionSpecs,
  OptionValues,
  ParseResult,
  ParserSettings,
  StringOption,
  ValueSource,
} from "./options.js";
export { parseDuration, formatDuration } from "./duration.js";
export { clientSecurityOptions, serviceOptions } from "./common.js";

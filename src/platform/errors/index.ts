export { Code, codeName, toCode } from "./code.js";
export { AutodidactError } from "./autodidact-error.js";

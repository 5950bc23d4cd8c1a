#!/usr/bin/env node
// Entry point of the `autodidact` command: loads the TypeScript CLI through tsx's loader.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../apps/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));

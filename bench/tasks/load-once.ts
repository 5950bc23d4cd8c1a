// One measurement of the time a task module adds to a service's start: this process loads the modules
// given on the command line exactly as a service does (startTaskModules) and prints the milliseconds.
import { dirname, resolve } from "node:path";
import { loadTaskModules } from "../../src/domain/tasks/index.js";

const modules = process.argv.slice(2).map((m) => resolve(m));
const started = performance.now();
const ids = await loadTaskModules({ modules, dirs: [...new Set(modules.map((m) => dirname(m)))] });
const ms = performance.now() - started;
process.stdout.write(JSON.stringify({ ms, tasks: ids.map((i) => i.name) }) + "\n");

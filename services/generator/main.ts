// Process entry of the generator service (`autodidact generator`).
import { runService } from "../../src/platform/host/index.js";
import { generatorService } from "./generator-service.js";

process.exitCode = await runService(generatorService);

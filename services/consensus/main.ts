// Process entry of the consensus service (`autodidact consensus`).
import { runService } from "../../src/platform/host/index.js";
import { consensusService } from "./consensus-service.js";

process.exitCode = await runService(consensusService);

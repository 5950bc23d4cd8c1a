// Process entry of the critic service (`autodidact critic`).
import { runService } from "../../src/platform/host/index.js";
import { criticService } from "./critic-service.js";

process.exitCode = await runService(criticService);

// Process entry of the trainer service (`autodidact trainer`).
import { runService } from "../../src/platform/host/index.js";
import { trainerService } from "./trainer-service.js";

process.exitCode = await runService(trainerService);

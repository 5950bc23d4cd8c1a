// Process entry of the conductor service (`autodidact conductor`).
import { runService } from "../../src/platform/host/index.js";
import { conductorService } from "./conductor-service.js";

process.exitCode = await runService(conductorService);

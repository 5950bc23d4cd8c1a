// Process entry of the monitor service (`autodidact monitor`).
import { runService } from "../../src/platform/host/index.js";
import { monitorService } from "./monitor-service.js";

process.exitCode = await runService(monitorService);

// Process entry of the monitor service (`autodidact monitor`).
import { runService } from "../../src/host/index.js";
import { monitorService } from "./monitor-service.js";

process.exitCode = await runService(monitorService);

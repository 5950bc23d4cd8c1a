export { monitorOptions, monitorService } from "./monitor-service.js";

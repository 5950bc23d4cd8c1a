export { consensusOptions, consensusService } from "./consensus-service.js";

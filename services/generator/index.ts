export { generatorOptions, generatorService } from "./generator-service.js";

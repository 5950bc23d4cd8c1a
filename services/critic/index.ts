export { criticOptions, criticService } from "./critic-service.js";

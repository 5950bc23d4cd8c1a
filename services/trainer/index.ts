export { trainerOptions, trainerService } from "./trainer-service.js";

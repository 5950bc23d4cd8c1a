export { criticOptions, criticService } from "./critic-service.js";
export { createCritic } from "./critic.js";
export type { Critic, CriticOptions, CriticStats } from "./critic.js";
export {
  charNgrams,
  createClassifierJudge,
  createLikelihoodJudge,
  createModelJudge,
  createNoveltyJudge,
  createRulesJudge,
  createVerifierJudge,
  createAcceptAllJudge,
  CRITIC_KINDS,
  jaccard,
} from "./judges.js";
export type { CriticKind, Judge, Judgement, ModelJudgeOptions, NoveltyOptions } from "./judges.js";

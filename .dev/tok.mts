import { createTaskTokenizer, getTaskPack } from "../src/domain/tasks/index.ts";
const a = createTaskTokenizer(getTaskPack("addition")); const p = createTaskTokenizer(getTaskPack("addition-padded"));
console.log(a.vocabSize, p.vocabSize, JSON.stringify(getTaskPack("addition").tokenizer) === JSON.stringify(getTaskPack("addition-padded").tokenizer));
console.log(getTaskPack("addition-padded").difficulty, getTaskPack("addition").difficulty);

import { defineConfig } from "vitest/config";

// Native addons (onnxruntime-node) and child processes behave best in forked workers.
export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "services/**/*.test.ts", "apps/**/*.test.ts", "tests/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});

import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Integration tests bind real loopback ports and child processes; two cores are all we have.
    pool: "forks",
    coverage: {
      provider: "v8",
      include: ["src/core/**/*.ts"],
      reporter: ["text-summary"],
      thresholds: { lines: 95, functions: 95, branches: 90, statements: 95 },
    },
  },
});

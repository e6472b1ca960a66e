// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "coverage/", "node_modules/", "bench/results.json"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
    },
  },
  {
    // The core is pure: it must never reach for I/O. See DESIGN.md, Layout.
    files: ["src/core/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [
          { group: ["node:*", "fs", "net", "http", "https", "dgram", "child_process"], message: "src/core is pure: no I/O imports." },
          { group: ["got", "ws", "lowdb", "lowdb/*", "node-cron", "discord.js", "minecraft-protocol", "pino", "prom-client"], message: "src/core is pure: no I/O libraries." },
          { group: ["../daemon/*", "../sources/*", "../adapters/*", "../cli/*", "../sandbox/*"], message: "core imports nothing of ours but itself." },
        ],
      }],
    },
  },
  {
    files: ["bin/**/*.js"],
    languageOptions: { globals: { process: "readonly", console: "readonly" } },
  },
);

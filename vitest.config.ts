import { defineConfig } from "vitest/config";

// Integration tests mount loop devices and run crun as root on a 2-core machine:
// run files one after another so they never fight over the host.
export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ["default"],
  },
});

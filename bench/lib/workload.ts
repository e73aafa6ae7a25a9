import type { Config } from "../../src/config/schema.js";

/** What every variant runs: the demo bundle's python printing one line. */
export const COMMAND = ["python3", "-c", "print(42)"];

/** What COMMAND must print for a sample to count. */
export const EXPECTED_OUTPUT = "42";

/** The configuration of every state directory the benchmark opens. */
export const CONFIG: Config = { image: { compression: "lz4" } };

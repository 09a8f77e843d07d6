#!/usr/bin/env node
// The `easel` command: the CLI's bundle (see cli-bundle.js), or the TypeScript sources through tsx when no bundle
// can be made (or EASEL_CLI_TSX=1).
import { cliBundle } from "./cli-bundle.js";

const bundle = await cliBundle();
if (bundle) {
  await import(bundle);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli.ts");
}

/**
 * The `easel` command line's entry (bin/easel.js runs it through tsx). The program is in src/cli/program.ts;
 * this file only runs it, so that importing the program (in tests, or from another tool) runs nothing.
 */
import { runCli } from "./cli/program.ts";

process.exitCode = await runCli(process.argv.slice(2));

/**
 * The shape of a command (its options, context, reply and the helpers that read them) is core's, so that core
 * can run and answer commands for every platform (src/core/command-model.ts); the definitions here use it.
 */
export * from "../src/core/command-model.ts";

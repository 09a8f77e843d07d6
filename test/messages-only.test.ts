import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/**
 * DESIGN.md: user-facing text lives in one place (src/core/messages.ts). A command file may hold its
 * definition's own words (its description and its options' `.describe()` texts, which platforms register with
 * the command), but every sentence it answers with comes from messages.ts. A sentence here is a string or the
 * fixed parts of a template that hold a word and a space; single words ("on", "week", a setting's name) are
 * values, not sentences, and are not checked.
 */

const COMMANDS_DIR = resolve("commands");
/** The registry and the shared types, not a command's replies. */
const NOT_COMMANDS = new Set(["index.ts", "types.ts"]);

const isSentence = (text: string): boolean => /[A-Za-z]{2,}/.test(text) && /\s/.test(text);

/** Whether `node` is the argument of a `.describe(…)` call or the value of a `description:` property. */
function isDefinitionText(node: ts.Node): boolean {
  const parent = node.parent;
  if (ts.isCallExpression(parent) && parent.arguments.includes(node as ts.Expression)) {
    const callee = parent.expression;
    return ts.isPropertyAccessExpression(callee) && callee.name.text === "describe";
  }
  return (
    ts.isPropertyAssignment(parent) &&
    parent.initializer === node &&
    ts.isIdentifier(parent.name) &&
    parent.name.text === "description"
  );
}

/** Every sentence written out in `source`, as `line: text`, outside definition texts. */
function literalSentences(fileName: string, source: string): string[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    let text: string | undefined;
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) text = node.text;
    else if (ts.isTemplateExpression(node))
      text = [node.head.text, ...node.templateSpans.map((s) => s.literal.text)].join("{…}");
    if (text !== undefined) {
      const inImport = ts.isImportDeclaration(node.parent) || ts.isExportDeclaration(node.parent);
      if (!inImport && isSentence(text) && !isDefinitionText(node)) {
        const { line } = file.getLineAndCharacterOfPosition(node.getStart());
        found.push(`${fileName}:${line + 1}: ${text}`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

describe("user-facing text lives in core/messages.ts", () => {
  it("finds a reply written out in a command, and leaves its definition's texts and its values alone", () => {
    const source = `
      import { COMMAND_TEXT } from "../src/core/messages.ts";
      export const c = defineCommand({
        name: "top",
        description: "The most-voted images in this server",
        options: { period: z.enum(["day", "week"]).optional().describe("How far back (default: week)") },
        handle(args) {
          if (args.period === "day") return { kind: "text", text: \`No votes this \${args.period}.\`, ephemeral: true };
          if (args.period === "week") return { kind: "text", text: "Nothing yet, sorry", ephemeral: true };
          return { kind: "text", text: [COMMAND_TEXT.top.heading("all"), \`\${a}: \${b}\`].join(", "), ephemeral: true };
        },
      });`;
    expect(literalSentences("planted.ts", source)).toEqual([
      "planted.ts:8: No votes this {…}.",
      "planted.ts:9: Nothing yet, sorry",
    ]);
  });

  it("holds for every command file", () => {
    const files = readdirSync(COMMANDS_DIR).filter((f) => f.endsWith(".ts") && !NOT_COMMANDS.has(f));
    expect(files).toContain("settings.ts");
    const found = files.flatMap((f) =>
      literalSentences(`commands/${f}`, readFileSync(join(COMMANDS_DIR, f), "utf8")),
    );
    expect(found).toEqual([]);
  });
});

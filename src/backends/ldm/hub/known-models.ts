import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { EaselError } from "../../../core/errors.ts";
import { MODEL_FAMILIES } from "../model-family.ts";
import { MODEL_NAME } from "../model-folder.ts";

/** The bundled list of known exports, `models/known-models.json` in the project. */
export const DEFAULT_KNOWN_MODELS_FILE = fileURLToPath(
  new URL("../../../../models/known-models.json", import.meta.url),
);

export type { ModelFamily } from "../model-family.ts";

const text = (pattern: RegExp = /\S/) => z.string().regex(pattern, "is missing or malformed");

const PinSchema = z.object({
  path: z.string().min(1, "needs a path"),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits")
    .optional(),
  size: z.number().int("must be a whole number of bytes").min(0).optional(),
});

const KnownModelSchema = z.object({
  /** The folder name under the models folder. */
  name: text(MODEL_NAME),
  /** `owner/name` on the hub. */
  repo: text(/^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/),
  /** Branch, tag or commit. */
  revision: text(/^\S+$/),
  description: text(),
  family: z.enum(MODEL_FAMILIES),
  license: text(),
  /** True when the repo needs an accepted license and HF_TOKEN. */
  gated: z.boolean(),
  /** Checksums or sizes pinned here; the hub's tree must agree with them. */
  files: z.array(PinSchema).optional(),
});

/** A checksum or size pinned in known-models.json; the hub's tree must agree with it. */
export type PinnedFile = z.infer<typeof PinSchema>;
/** One entry of known-models.json: where an export lives on the hub and what it is. */
export type KnownModel = z.infer<typeof KnownModelSchema>;

/** Reads and checks a known-models list (default: the project's `models/known-models.json`). */
export function loadKnownModels(file: string = DEFAULT_KNOWN_MODELS_FILE): KnownModel[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch (cause) {
    throw new EaselError("config", `cannot read the known models list ${file}`, { cause });
  }
  const parsed = z.object({ models: z.array(KnownModelSchema) }).safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join(".") || "the list"} ${issue.message}`,
    );
    throw new EaselError("config", `${file}: ${problems.join("; ")}`);
  }
  const seen = new Set<string>();
  for (const model of parsed.data.models) {
    if (seen.has(model.name))
      throw new EaselError("config", `${file}: model "${model.name}" is listed twice`);
    seen.add(model.name);
  }
  return parsed.data.models;
}

/** The known model called `name`, or an error listing the known ones. */
export function findKnownModel(name: string, models: KnownModel[]): KnownModel {
  const model = models.find((candidate) => candidate.name === name);
  if (model) return model;
  const shown = name.replace(/[^\x20-\x7e]/g, "?").slice(0, 64);
  throw new EaselError(
    "invalid_argument",
    `unknown model "${shown}"; known models: ${models.map((m) => m.name).join(", ") || "none"}`,
  );
}

import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsImport from "ajv-formats";
import { loadSpec } from "../specs/load-spec.ts";
import { embedCharacters, MessageFlag } from "./payloads.ts";
import { fileIndex, type RecordedFile } from "./state.ts";

/**
 * Checks request bodies the way Discord would: against Discord's own OpenAPI document
 * (test/fakes/specs/discord/openapi.json, or DISCORD_SPEC) with Ajv's 2020-12 build, plus the rules Discord
 * enforces that the document leaves out (five action rows, 6000 characters across embeds, 2000 of content,
 * lowercase command names). Failures come back both flat (for test messages) and nested the way Discord's
 * "Invalid Form Body" (50035) nests them under `errors`.
 *
 * Compiling the big schemas takes about half a second, so the document is parsed once per process and each
 * validator is compiled on first use and cached here, at module level, for every fake in the run.
 */

/** One way a body breaks a rule: where (a path into the body), Discord's error code and message. */
export interface FieldError {
  path: (string | number)[];
  code: string;
  message: string;
}

// ajv-formats is CommonJS with `exports.default`; under Node's ESM loader the default import is the whole
// module object, under some bundlers it is the function itself.
const addFormats = ((addFormatsImport as unknown as { default?: typeof addFormatsImport }).default ??
  addFormatsImport) as unknown as (ajv: Ajv2020) => Ajv2020;

let ajvInstance: Ajv2020 | undefined;
const validators = new Map<string, ValidateFunction>();
const SPEC_ID = "discord-openapi";

function ajv(): Ajv2020 {
  if (ajvInstance !== undefined) return ajvInstance;
  const spec = loadSpec("discord");
  // coerceTypes: the spec types int-parseable strings (permissions, snowflakes in some places) as integers,
  // and discord.js sends them as strings, as Discord accepts.
  // verbose: errors carry their parentSchema, which tells which union branch produced them (see prune()).
  const instance = new Ajv2020({
    strict: true,
    allErrors: true,
    verbose: true,
    coerceTypes: true,
    allowUnionTypes: true,
  });
  addFormats(instance);
  instance.addFormat("snowflake", /^(0|[1-9][0-9]*)$/);
  instance.addFormat("nonce", true);
  // The document's own top-level keys and Discord's extension keyword, or strict mode stops at "openapi".
  instance.addVocabulary([...Object.keys(spec), "x-discord-union"]);
  relaxNullUnions(spec);
  instance.addSchema(spec, SPEC_ID);
  indexOwners(spec);
  ajvInstance = instance;
  return instance;
}

/**
 * `oneOf: [{type: "null"}, X]` becomes `anyOf`. The two branches are disjoint for JSON as sent, but
 * coerceTypes (needed for int-parseable strings) turns 0, "" and false into null too, so a `min_value: 0`
 * would match both branches and fail the oneOf, which Discord never does.
 */
function relaxNullUnions(node: unknown): void {
  if (typeof node !== "object" || node === null) return;
  const obj = node as Record<string, unknown>;
  const branches = obj.oneOf;
  if (
    Array.isArray(branches) &&
    branches.some((b) => typeof b === "object" && b !== null && (b as { type?: unknown }).type === "null")
  ) {
    obj.anyOf = branches;
    delete obj.oneOf;
  }
  for (const child of Object.values(obj)) relaxNullUnions(child);
}

const escapePointer = (segment: string) => segment.replace(/~/g, "~0").replace(/\//g, "~1");

/** The compiled validator for a JSON pointer into the spec (cached for the whole run). */
function validatorFor(pointer: string): ValidateFunction | undefined {
  const instance = ajv();
  let validate = validators.get(pointer);
  if (!validate) {
    validate = instance.compile({ $ref: `${SPEC_ID}#${encodeURI(pointer)}` });
    validators.set(pointer, validate);
  }
  return validate;
}

/** Validator for the JSON body of an operation, e.g. ("post", "/channels/{channel_id}/messages"). */
function operationPointer(method: string, route: string): string {
  return `/paths/${escapePointer(route)}/${method.toLowerCase()}/requestBody/content/application~1json/schema`;
}

/** The spec's union of interaction callbacks, narrowed by `type` so that errors name the branch that applies. */
const CALLBACK_SCHEMAS: Record<number, string> = {
  1: "PongInteractionCallbackRequest",
  4: "CreateMessageInteractionCallbackRequest",
  5: "CreateMessageInteractionCallbackRequest",
  6: "UpdateMessageInteractionCallbackRequest",
  7: "UpdateMessageInteractionCallbackRequest",
  8: "ApplicationCommandAutocompleteCallbackRequest",
  9: "ModalInteractionCallbackRequest",
  12: "LaunchActivityInteractionCallbackRequest",
};

const CALLBACK_ROUTE = "/interactions/{interaction_id}/{interaction_token}/callback";

/** Validates a request body against the operation's request schema; [] when valid. */
export function validateAgainstSpec(method: string, route: string, body: unknown): FieldError[] {
  let pointer = operationPointer(method, route);
  if (route === CALLBACK_ROUTE && typeof body === "object" && body !== null) {
    const name = CALLBACK_SCHEMAS[(body as { type?: unknown }).type as number];
    if (name) pointer = `/components/schemas/${name}`;
  }
  const validate = validatorFor(pointer);
  if (!validate) return [];
  // Ajv coerces in place; the recorded body must stay what the client sent.
  const data = structuredClone(body);
  if (validate(data)) return [];
  return dedupeErrors(prune(validate.errors ?? []).map(toFieldError));
}

/** Validates an object the fake itself produced against a response schema (e.g. "MessageResponse"). */
export function validateResponseSchema(schemaName: string, value: unknown): string[] {
  const validate = validatorFor(`/components/schemas/${schemaName}`);
  if (!validate || validate(structuredClone(value))) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? e.keyword}`);
}

/** Which object schema owns a schema node: itself, or the object whose `properties` hold it. */
const owners = new WeakMap<object, object>();

function indexOwners(node: unknown): void {
  if (typeof node !== "object" || node === null) return;
  const obj = node as Record<string, unknown>;
  if (typeof obj.properties === "object" && obj.properties !== null) {
    owners.set(obj, obj);
    for (const prop of Object.values(obj.properties as Record<string, unknown>)) {
      if (typeof prop === "object" && prop !== null) owners.set(prop, obj);
    }
  }
  for (const child of Object.values(obj)) indexOwners(child);
}

const parentPointer = (p: string) => p.slice(0, Math.max(0, p.lastIndexOf("/")));

/**
 * Reduces Ajv's report to the errors Discord would name. Discord's unions (components, callbacks) are
 * discriminated by `type`, and Ajv reports a failure for every branch: "type must be 8", "must have
 * options"… for a button that is simply too long. So: errors from a branch whose `type` did not match the
 * value's are dropped (the branch is found through the error's parentSchema), union keywords are dropped,
 * only the deepest errors are kept, and what is left about `type` is merged into one list of allowed values.
 */
function prune(errors: ErrorObject[]): ErrorObject[] {
  const objectOf = (e: ErrorObject) =>
    e.keyword === "required" ? e.instancePath : parentPointer(e.instancePath);
  const ownerOf = (e: ErrorObject) => (e.parentSchema ? owners.get(e.parentSchema) : undefined);
  const isMismatch = (e: ErrorObject) =>
    (e.keyword === "enum" || e.keyword === "const") &&
    e.instancePath.endsWith("/type") &&
    ownerOf(e) !== undefined;
  const mismatched = new Set<string>();
  const ids = new Map<object, number>();
  const key = (e: ErrorObject) => {
    const owner = ownerOf(e);
    if (!owner) return "";
    if (!ids.has(owner)) ids.set(owner, ids.size);
    return `${objectOf(e)}|${ids.get(owner)}`;
  };
  for (const e of errors) if (isMismatch(e)) mismatched.add(key(e));
  const meaningful = (list: ErrorObject[]) =>
    list.filter((e) => !["anyOf", "oneOf", "allOf", "if"].includes(e.keyword));
  let pool = meaningful(errors.filter((e) => !mismatched.has(key(e))));
  // Nothing matched the value's type at all: then the type is the error.
  if (pool.length === 0) pool = meaningful(errors);
  const paths = pool.map((e) => e.instancePath);
  const leaves = pool.filter((e) => !paths.some((p) => p.startsWith(`${e.instancePath}/`)));
  // "Value must be one of [1]", "… [9]", … at one path become one error listing every allowed value.
  const choices = (e: ErrorObject): unknown[] | undefined => {
    if (e.keyword === "enum") return e.params.allowedValues as unknown[];
    if (e.keyword === "const") return [e.params.allowedValue];
    return undefined;
  };
  const merged: ErrorObject[] = [];
  for (const e of leaves) {
    const values = choices(e);
    const same = values && merged.find((m) => m.keyword === "enum" && m.instancePath === e.instancePath);
    if (!values) merged.push(e);
    else if (!same) merged.push({ ...e, keyword: "enum", params: { allowedValues: [...values] } });
    else {
      const all = new Set([...(same.params.allowedValues as unknown[]), ...values]);
      same.params.allowedValues = [...all].sort((x, y) => (Number(x) || 0) - (Number(y) || 0));
    }
  }
  return merged;
}

/** Drops repeats (the spec and the prose rules may both catch a 101-character custom_id). */
export function dedupeErrors(errors: FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const k = `${e.path.join(".")}|${e.code}|${e.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function toFieldError(e: ErrorObject): FieldError {
  const path: (string | number)[] = e.instancePath
    .split("/")
    .slice(1)
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case "maxLength":
    case "maxItems":
      return { path, code: "BASE_TYPE_MAX_LENGTH", message: `Must be ${p.limit} or fewer in length.` };
    case "minLength":
    case "minItems":
      return { path, code: "BASE_TYPE_MIN_LENGTH", message: `Must be ${p.limit} or more in length.` };
    case "required":
      return {
        path: [...path, String(p.missingProperty)],
        code: "BASE_TYPE_REQUIRED",
        message: "This field is required",
      };
    case "maximum":
      return {
        path,
        code: "NUMBER_TYPE_MAX",
        message: `int value should be less than or equal to ${p.limit}.`,
      };
    case "minimum":
      return {
        path,
        code: "NUMBER_TYPE_MIN",
        message: `int value should be greater than or equal to ${p.limit}.`,
      };
    case "enum":
    case "const":
      return {
        path,
        code: "BASE_TYPE_CHOICES",
        message: `Value must be one of ${JSON.stringify(p.allowedValues ?? p.allowedValue)}.`,
      };
    case "pattern":
    case "format":
      return { path, code: "STRING_TYPE_REGEX", message: `String value did not match validation regex.` };
    case "type":
      return { path, code: "BASE_TYPE_BAD_TYPE", message: `Must be of type ${String(p.type)}.` };
    default:
      return { path, code: "BASE_TYPE_INVALID", message: e.message ?? e.keyword };
  }
}

// ---- Rules the spec leaves to prose ---------------------------------------------------------------------------

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The message rules Discord enforces beyond the schemas, for a message body found at `at` in the request
 * (the callback's `data`, or the whole body elsewhere).
 */
export function messageRules(message: unknown, at: (string | number)[] = []): FieldError[] {
  if (!isObject(message)) return [];
  const errors: FieldError[] = [];
  // The spec allows 4000 in MessageCreateRequest (a Nitro allowance); bots are held to 2000.
  if (typeof message.content === "string" && [...message.content].length > 2000) {
    errors.push({
      path: [...at, "content"],
      code: "BASE_TYPE_MAX_LENGTH",
      message: "Must be 2000 or fewer in length.",
    });
  }
  const flags = typeof message.flags === "number" ? message.flags : 0;
  const components = Array.isArray(message.components) ? message.components : [];
  // Components V2 lifts the row limit to 40 components in total (which the spec's maxItems covers).
  if ((flags & MessageFlag.IsComponentsV2) === 0 && components.length > 5) {
    errors.push({
      path: [...at, "components"],
      code: "BASE_TYPE_MAX_LENGTH",
      message: "Must be 5 or fewer in length.",
    });
  }
  const walk = (list: unknown[], path: (string | number)[]) => {
    list.forEach((c, i) => {
      if (!isObject(c)) return;
      if (typeof c.custom_id === "string" && [...c.custom_id].length > 100) {
        errors.push({
          path: [...path, i, "custom_id"],
          code: "BASE_TYPE_MAX_LENGTH",
          message: "Must be 100 or fewer in length.",
        });
      }
      if (Array.isArray(c.components)) walk(c.components, [...path, i, "components"]);
    });
  };
  walk(components, [...at, "components"]);
  const embeds = Array.isArray(message.embeds) ? message.embeds : [];
  if (embedCharacters(embeds) > 6000) {
    errors.push({
      path: [...at, "embeds"],
      code: "MAX_EMBED_SIZE_EXCEEDED",
      message: "Embed size exceeds maximum size of 6000",
    });
  }
  return errors;
}

const CHAT_INPUT_NAME = /^[-_\p{L}\p{N}]{1,32}$/u;

/** The naming rules for application commands and their options (lowercase, no spaces, 1–32 characters). */
export function commandRules(commands: unknown, at: (string | number)[] = []): FieldError[] {
  const list = Array.isArray(commands) ? commands : [commands];
  const errors: FieldError[] = [];
  const checkName = (name: unknown, path: (string | number)[], what: string) => {
    if (typeof name !== "string") return;
    if (!CHAT_INPUT_NAME.test(name) || name !== name.toLowerCase()) {
      errors.push({
        path: [...path, "name"],
        code:
          what === "command" ? "APPLICATION_COMMAND_INVALID_NAME" : "APPLICATION_COMMAND_OPTION_INVALID_NAME",
        message: `${what === "command" ? "Command" : "Option"} name is invalid`,
      });
    }
  };
  const walkOptions = (options: unknown, path: (string | number)[]) => {
    if (!Array.isArray(options)) return;
    options.forEach((o, i) => {
      if (!isObject(o)) return;
      checkName(o.name, [...path, i], "option");
      walkOptions(o.options, [...path, i, "options"]);
    });
  };
  list.forEach((c, i) => {
    if (!isObject(c)) return;
    const path = Array.isArray(commands) ? [...at, i] : at;
    // User and message commands (types 2, 3) are shown as menu items and may have spaces and capitals.
    const type = c.type === undefined ? 1 : c.type;
    if (type === 1 || type === "1") checkName(c.name, path, "command");
    walkOptions(c.options, [...path, "options"]);
  });
  return errors;
}

/** Nests flat errors the way Discord's ErrorResponse does: {"data": {"content": {"_errors": [...]}}}. */
export function nestErrors(errors: readonly FieldError[]): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const e of errors) {
    let node = root;
    for (const segment of e.path) {
      const key = String(segment);
      node[key] ??= {};
      node = node[key] as Record<string, unknown>;
    }
    node._errors ??= [];
    (node._errors as { code: string; message: string }[]).push({ code: e.code, message: e.message });
  }
  return root;
}

/** "data.components.0.custom_id: Must be 100 or fewer in length." */
export function describeError(e: FieldError): string {
  return `${e.path.length ? e.path.join(".") : "(body)"}: ${e.message} (${e.code})`;
}

/**
 * Uploads against the body's `attachments`: at most 10 files, and every entry that names no existing
 * attachment must have its `files[id]` part.
 */
export function attachmentRules(
  message: unknown,
  files: RecordedFile[],
  existing: readonly string[],
  at: (string | number)[],
): FieldError[] {
  const errors: FieldError[] = [];
  if (files.length > 10) {
    errors.push({ path: ["files"], code: "BASE_TYPE_MAX_LENGTH", message: "Must be 10 or fewer in length." });
  }
  const entries = (message as { attachments?: unknown } | undefined)?.attachments;
  if (!Array.isArray(entries)) return errors;
  const indices = new Set(files.map((f, i) => fileIndex(f, i)));
  entries.forEach((raw, i) => {
    const id = String((raw as { id?: unknown } | null)?.id ?? "");
    if (existing.includes(id) || indices.has(id)) return;
    errors.push({
      path: [...at, "attachments", i, "id"],
      code: "ATTACHMENT_NOT_FOUND",
      message: `No upload files[${id}] and no existing attachment ${id}.`,
    });
  });
  return errors;
}

import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import { loadSpec } from "../specs/load-spec.ts";

/**
 * Checks the Web API requests the bot sends against Slack's own contract, so the fake refuses what Slack would.
 *
 * Slack's spec (test/fakes/specs/slack/slack_web_openapi_v2.json, or `SLACK_SPEC`) is Swagger 2.0 and has no
 * request-body schemas: following test/fakes/specs/README.md, an object schema is built per operation from its
 * non-header parameters (the `token` parameter stands for the Authorization header), form values are coerced
 * (every form value is a string on the wire), and `blocks`/`attachments` are JSON-parsed first. Operations are
 * looked up by path, never by HTTP method, since the spec says GET where @slack/web-api POSTs. Ajv's default
 * (draft-07) class runs with strict mode off, because the spec writes tuple-form `items` to mean "one of".
 *
 * The spec predates files.uploadV2 and Socket Mode, so files.getUploadURLExternal,
 * files.completeUploadExternal and apps.connections.open have contracts written here by hand from
 * docs.slack.dev. Unknown parameters are allowed, as Slack ignores them, but reported so that a test can
 * notice a misspelt one. Without the spec file, spec-described methods go unchecked (the hand-written
 * contracts still apply).
 *
 * Compiled validators are cached at module level: one Ajv instance per process, one validator per method.
 */

type Schema = Record<string, unknown>;

/** The id the spec document is registered under in Ajv. */
const SPEC_ID = "slack-web-api";

/** What one request check found. */
export interface RequestCheck {
  /** Where the contract came from: Slack's spec, a hand-written one, or none known for this method. */
  contract: "spec" | "hand" | "none";
  /** Slack-style messages (`missing required field: channel`); empty when the request is valid. */
  errors: string[];
  /** Parameters the contract does not know (Slack ignores them). */
  unknownParams: string[];
  /** JSON-text fields (`blocks`, `attachments`, `files`) that did not parse. */
  badJson: string[];
}

/** Parameters newer than the 2020 spec that Slack accepts everywhere (team_id: the WebClient's `teamId`). */
const ACCEPTED_EVERYWHERE = new Set(["team_id", "metadata"]);

/** Fields sent as JSON text inside a form body; they are parsed before their schema is checked. */
const JSON_FIELDS = new Set(["blocks", "attachments", "files"]);

const TS_PATTERN = "^\\d{10}\\.\\d{6}$";
const CHANNEL_PATTERN = "^[CGD][A-Z0-9]{8,}$";

/** Contracts for the methods Slack's 2020 spec lacks, from docs.slack.dev. */
const HAND_WRITTEN: Record<string, Schema> = {
  "files.getUploadURLExternal": {
    type: "object",
    properties: {
      filename: { type: "string", minLength: 1 },
      length: { type: "integer", minimum: 1 },
      alt_txt: { type: "string" },
      snippet_type: { type: "string" },
    },
    required: ["filename", "length"],
  },
  "files.completeUploadExternal": {
    type: "object",
    properties: {
      files: {
        type: "array",
        minItems: 1,
        items: {
          type: "object",
          properties: {
            id: { type: "string", pattern: "^F[A-Z0-9]{8,}$" },
            title: { type: "string" },
            highlight_type: { type: "string" },
          },
          required: ["id"],
        },
      },
      channel_id: { type: "string", pattern: CHANNEL_PATTERN },
      channels: { type: "string" },
      thread_ts: { type: "string", pattern: TS_PATTERN },
      initial_comment: { type: "string" },
      blocks: { $ref: `${SPEC_ID}#/definitions/blocks` },
    },
    required: ["files"],
  },
  "apps.connections.open": { type: "object", properties: {} },
};

let specCache: Schema | undefined;

/** Slack's OpenAPI 2.0 document (`SLACK_SPEC` or the repository's copy), parsed once; throws when absent. */
export function slackSpec(): Schema {
  specCache ??= loadSpec<Schema>("slack");
  return specCache;
}

/** The operation object for `method`, found by path (`/chat.postMessage`) whatever HTTP verb the spec says. */
export function specOperation(method: string): Schema | undefined {
  const paths = slackSpec().paths as Record<string, Record<string, Schema>> | undefined;
  const item = paths?.[`/${method}`];
  return item ? Object.values(item)[0] : undefined;
}

function newAjv(coerce: boolean): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true, coerceTypes: coerce, logger: false });
  addFormats.default(ajv);
  ajv.addSchema(slackSpec(), SPEC_ID);
  return ajv;
}

let requestAjv: Ajv | undefined;
const requestValidators = new Map<string, { validate: ValidateFunction; contract: "spec" | "hand" } | null>();

interface SwaggerParameter {
  name: string;
  in: string;
  type?: string;
  required?: boolean;
  format?: string;
  enum?: unknown[];
}

/** The object schema of one spec operation's form/query parameters. */
function schemaFromParameters(operation: Schema): Schema {
  const properties: Record<string, Schema> = {};
  const required: string[] = [];
  for (const p of (operation.parameters as SwaggerParameter[] | undefined) ?? []) {
    if (p.in === "header" || p.name === "token") continue;
    if (p.name === "blocks") properties[p.name] = { $ref: `${SPEC_ID}#/definitions/blocks` };
    else if (p.name === "attachments") properties[p.name] = { type: "array", items: { type: "object" } };
    else
      properties[p.name] = {
        ...(p.type ? { type: p.type } : {}),
        ...(p.enum ? { enum: p.enum } : {}),
      };
    if (p.required) required.push(p.name);
  }
  return { type: "object", properties, required };
}

function validatorFor(method: string): { validate: ValidateFunction; contract: "spec" | "hand" } | null {
  const cached = requestValidators.get(method);
  if (cached !== undefined) return cached;
  requestAjv ??= newAjv(true);
  const hand = HAND_WRITTEN[method];
  const operation = hand ? undefined : specOperation(method);
  const entry = hand
    ? { validate: requestAjv.compile(hand), contract: "hand" as const }
    : operation
      ? { validate: requestAjv.compile(schemaFromParameters(operation)), contract: "spec" as const }
      : null;
  requestValidators.set(method, entry);
  return entry;
}

/** Slack's wording for an Ajv error. */
function describe(error: ErrorObject): string {
  const field = error.instancePath.replace(/^\//, "").replace(/\//g, ".");
  switch (error.keyword) {
    case "required":
      return `missing required field: ${String((error.params as { missingProperty: string }).missingProperty)}`;
    case "type":
      return `invalid type for field ${field}: expected ${String((error.params as { type: string }).type)}`;
    default:
      return `invalid value for field ${field || "(body)"}: ${error.message ?? error.keyword}`;
  }
}

/**
 * Checks a decoded request (`params`: form fields as strings, or a JSON body) against the method's contract.
 * Does not change `params`: the check runs on a copy, since Ajv's coercion rewrites values in place (a `ts`
 * coerced to a number would lose its trailing zeros).
 */
export function checkRequest(method: string, params: Record<string, unknown>): RequestCheck {
  const entry = validatorFor(method);
  if (!entry) return { contract: "none", errors: [], unknownParams: [], badJson: [] };
  const data: Record<string, unknown> = structuredClone(params);
  delete data.token;
  const errors: string[] = [];
  const badJson: string[] = [];
  for (const field of JSON_FIELDS) {
    const value = data[field];
    if (typeof value !== "string") continue;
    try {
      data[field] = JSON.parse(value);
    } catch {
      errors.push(`invalid JSON in field ${field}`);
      badJson.push(field);
      delete data[field];
    }
  }
  if (!entry.validate(data)) errors.push(...(entry.validate.errors ?? []).map(describe));
  const known = (entry.validate.schema as { properties?: Record<string, unknown> }).properties ?? {};
  const unknownParams = Object.keys(params).filter(
    (name) => name !== "token" && !(name in known) && !ACCEPTED_EVERYWHERE.has(name),
  );
  return { contract: entry.contract, errors, unknownParams, badJson };
}

let responseAjv: Ajv | undefined;
const responseValidators = new Map<string, ValidateFunction | null>();

/**
 * Checks a success answer against the spec's `200` schema for `method` (for tests of the fake itself).
 * Returns Ajv's messages with their paths, empty when valid, or undefined when the spec has no schema.
 */
export function checkResponse(method: string, body: unknown): string[] | undefined {
  let validate = responseValidators.get(method);
  if (validate === undefined) {
    const operation = specOperation(method);
    const schema = (operation?.responses as Record<string, { schema?: Schema }> | undefined)?.["200"]?.schema;
    responseAjv ??= newAjv(false);
    validate = schema
      ? responseAjv.compile({ $ref: `${SPEC_ID}#/paths/~1${method}/${verbOf(method)}/responses/200/schema` })
      : null;
    responseValidators.set(method, validate);
  }
  if (!validate) return undefined;
  if (validate(body)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? e.keyword}`);
}

function verbOf(method: string): string {
  const paths = slackSpec().paths as Record<string, Record<string, Schema>> | undefined;
  return Object.keys(paths?.[`/${method}`] ?? {})[0] ?? "post";
}

/**
 * Secrets out of text bound for the log, by value and by shape. By value: the configured tokens and keys
 * (whatever their format: a proxy's key need not look like OpenAI's). By shape: credentials easel never
 * configured but meets in flight (Discord interaction tokens, Slack response URLs and upload URLs, Socket
 * Mode tickets), and configured ones in another spelling (URL-encoded, or cut off so that the value no
 * longer matches). Pure text functions, so that every sink and every test uses the same rules.
 */

export const REDACTED = "[redacted]";

/**
 * Configured values shorter than this are not searched for: they would blank out ordinary words in every
 * line, and a value that short protects nothing (a local proxy's "none").
 */
export const MIN_SECRET_LENGTH = 6;

/** One credential shape and what replaces it ($1 keeps the part before the secret, e.g. the URL's host). */
interface Shape {
  name: string;
  pattern: RegExp;
  replacement: string;
}

/** A URL's path or query value: up to whitespace, quotes, brackets or the end of the URL. */
const URL_PART = String.raw`[^\s"'<>()\]\\]+`;

export const SECRET_SHAPES: readonly Shape[] = [
  {
    // "Authorization: Bot <token>", "authorization":"Bearer …", any casing, with or without the scheme.
    name: "authorization header",
    pattern: /(\bauthorization\\?["']?\s*[:=]\s*\\?["']?)(?:(?:Bearer|Bot|Basic|Token)\s+)?[^\s"',;}\\]+/gi,
    replacement: `$1${REDACTED}`,
  },
  { name: "bearer token", pattern: /\bBearer\s+[A-Za-z0-9._~+/=-]{6,}/g, replacement: `Bearer ${REDACTED}` },
  {
    // A Discord bot token: base64 of the bot's id (starts M, N or O), a timestamp part, an HMAC part
    // (discord.js's debug output stars the last part out; that form is caught too).
    name: "discord bot token",
    pattern: /\b[MNO][A-Za-z\d_-]{23,27}\.[A-Za-z\d_-]{6,7}\.[A-Za-z\d_*-]{27,}/g,
    replacement: REDACTED,
  },
  { name: "discord mfa token", pattern: /\bmfa\.[A-Za-z\d_-]{20,}/g, replacement: REDACTED },
  {
    // Interaction tokens are base64 of "interaction:…"; they act as a webhook credential for 15 minutes.
    name: "discord interaction token",
    pattern: /aW50ZXJhY3Rpb246[A-Za-z0-9_-]*/g,
    replacement: REDACTED,
  },
  {
    // The interaction webhook (follow-ups, @original edits) and the callback carry the token in the path.
    name: "discord webhook path",
    pattern: /(\/(?:webhooks|interactions)\/\d{5,22}\/)[^\s/"'<>?#\\]+/g,
    replacement: `$1${REDACTED}`,
  },
  { name: "slack token", pattern: /\bxox[a-z]-[A-Za-z0-9-]{6,}/g, replacement: REDACTED },
  { name: "slack app token", pattern: /\bxapp-[A-Za-z0-9-]{6,}/g, replacement: REDACTED },
  {
    // A response_url lets anyone post into the channel for 30 minutes.
    name: "slack response url",
    pattern: new RegExp(String.raw`(https?://hooks\.slack\.com/)${URL_PART}`, "g"),
    replacement: `$1${REDACTED}`,
  },
  {
    // The paths of a response_url (commands, actions; `response` is the local fake's, test/fakes/fake-slack)
    // on whatever host SLACK_API_URL points at: team id, then the signed part.
    name: "slack response url path",
    pattern: new RegExp(`(/(?:commands|actions|response)/T[A-Z0-9]{2,}/)${URL_PART}`, "g"),
    replacement: `$1${REDACTED}`,
  },
  {
    // files.getUploadURLExternal's upload URL: the path is the credential.
    name: "slack upload url",
    pattern: new RegExp(`(/upload/v1/)${URL_PART}`, "g"),
    replacement: `$1${REDACTED}`,
  },
  {
    // Signed query parameters: Socket Mode tickets, Discord CDN signatures (hm), S3-style signed URLs.
    name: "signed query parameter",
    pattern:
      /([?&](?:token|access_token|ticket|sig|signature|hm|key|api_key|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token)=)[^&\s"'<>#\\]+/gi,
    replacement: `$1${REDACTED}`,
  },
  { name: "openai key", pattern: /\bsk-[A-Za-z0-9_*-]{6,}/g, replacement: REDACTED },
  { name: "hugging face token", pattern: /\bhf_[A-Za-z0-9]{10,}/g, replacement: REDACTED },
  {
    // A credential printed as a field (an object dumped by an SDK): `token: '…'`, `"api_key":"…"`.
    name: "credential field",
    pattern:
      /(\b(?:token|access_token|refresh_token|bot_token|app_token|api_key|apiKey|client_secret|signing_secret|signingSecret|password)\\?["']?\s*[:=]\s*\\?["']?)[^\s"',;}&\\]+/g,
    replacement: `$1${REDACTED}`,
  },
];

/** The spellings of a value to search for: as it is and URL-encoded; longest first, so no part is left over. */
function spellings(secrets: readonly (string | undefined)[]): string[] {
  const out = new Set<string>();
  for (const secret of secrets) {
    if (secret === undefined || secret.length < MIN_SECRET_LENGTH) continue;
    out.add(secret);
    out.add(encodeURIComponent(secret));
  }
  return [...out].sort((a, b) => b.length - a.length);
}

/** A redactor for a fixed set of configured secrets (computed once, applied to every line). */
export function redactor(secrets: readonly (string | undefined)[] = []): (text: string) => string {
  const values = spellings(secrets);
  return (text) => {
    let out = text;
    for (const value of values) if (out.includes(value)) out = out.split(value).join(REDACTED);
    for (const { pattern, replacement } of SECRET_SHAPES) out = out.replace(pattern, replacement);
    return out;
  };
}

/** `text` with `secrets` (by value) and every credential shape replaced by "[redacted]". */
export function redactText(text: string, secrets: readonly (string | undefined)[] = []): string {
  return redactor(secrets)(text);
}

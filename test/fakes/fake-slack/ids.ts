import { randomBytes, randomUUID } from "node:crypto";

/**
 * Identifiers shaped like Slack's: object ids (`C…`, `F…`, `B…`: a prefix and upper-case alphanumerics, which
 * is what the spec's `^[CGD][A-Z0-9]{8,}$`-style patterns accept), message timestamps (`1700000000.000100`:
 * seconds and microseconds, unique and increasing per workspace, which is how Slack identifies a message),
 * trigger ids, envelope ids and the short random `block_id` Slack fills in for blocks that have none.
 */

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const MIXED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

function randomString(alphabet: string, length: number): string {
  const bytes = randomBytes(length);
  let out = "";
  for (const byte of bytes) out += alphabet[byte % alphabet.length];
  return out;
}

/** Mints ids and message timestamps for one fake workspace. */
export class IdMint {
  private lastMicros = 0;
  private readonly issued = new Set<string>();

  /** @param now the workspace clock in milliseconds (the fake's injectable clock). */
  constructor(private readonly now: () => number) {}

  /**
   * A message `ts`: the clock in microseconds, bumped by one when two messages land in the same microsecond
   * (Slack's ts is unique per channel and clients sort by it), padded so that even a clock at 0 keeps the
   * ten-digit shape.
   */
  ts(): string {
    const micros = Math.max(Math.floor(this.now() * 1000), this.lastMicros + 1);
    this.lastMicros = micros;
    return formatTs(micros);
  }

  /** A fresh object id: `prefix` and ten upper-case alphanumerics, never repeated in this workspace. */
  id(prefix: string): string {
    for (;;) {
      const id = `${prefix}${randomString(ALPHANUMERIC, 10)}`;
      if (!this.issued.has(id)) {
        this.issued.add(id);
        return id;
      }
    }
  }
}

/** Microseconds since the epoch as a Slack `ts` (`^\d{10}\.\d{6}$`). */
export function formatTs(micros: number): string {
  const seconds = Math.floor(micros / 1_000_000);
  const fraction = micros % 1_000_000;
  return `${String(seconds).padStart(10, "0")}.${String(fraction).padStart(6, "0")}`;
}

/** A trigger id as Slack sends them (`<13 digits>.<13 digits>.<32 hex>`), valid for 3 s in real Slack. */
export function triggerId(): string {
  const digits = () =>
    String(Number.parseInt(randomBytes(6).toString("hex"), 16))
      .padStart(13, "0")
      .slice(-13);
  return `${digits()}.${digits()}.${randomBytes(16).toString("hex")}`;
}

/** A Socket Mode envelope id (Slack uses UUIDs). */
export const envelopeId = (): string => randomUUID();

/** The short id Slack gives a block that was posted without `block_id`. */
export const blockId = (): string => randomString(MIXED, 5);

/** An opaque random token for URLs (upload tickets, response URLs, WebSocket tickets). */
export const urlToken = (): string => randomBytes(18).toString("base64url");

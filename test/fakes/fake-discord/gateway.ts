import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { createDeflate, type Deflate, deflateSync, constants as zlibConstants } from "node:zlib";
import { type RawData, type WebSocket, WebSocketServer } from "ws";

/**
 * The fake's WebSocket gateway (API v10, JSON encoding): HELLO, IDENTIFY → READY + one GUILD_CREATE per guild,
 * HEARTBEAT → HEARTBEAT_ACK, RESUME → replay of missed dispatches + RESUMED, and the close codes Discord uses
 * for a bad token (4004), disallowed intents (4014), a second IDENTIFY (4005) and so on. Dispatches are
 * numbered per session and kept, so a client that loses its connection and resumes gets what it missed.
 *
 * discord.js 14.28 asks for `?v=10&encoding=json` and, unless the optional zlib-sync package is installed,
 * no transport compression: frames are plain JSON text. `compress=zlib-stream` (one zlib context per
 * connection, each payload ending in a Z_SYNC_FLUSH) and IDENTIFY's `compress: true` (each payload deflated
 * on its own) are supported as well, for clients that ask.
 */

/** Gateway opcodes. */
export const Op = {
  Dispatch: 0,
  Heartbeat: 1,
  Identify: 2,
  PresenceUpdate: 3,
  VoiceStateUpdate: 4,
  Resume: 6,
  Reconnect: 7,
  RequestGuildMembers: 8,
  InvalidSession: 9,
  Hello: 10,
  HeartbeatAck: 11,
} as const;

/** Intents whose use needs a switch in the developer portal: GUILD_MEMBERS, GUILD_PRESENCES, MESSAGE_CONTENT. */
export const PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15);

/** One gateway frame. */
export interface GatewayPayload {
  op: number;
  d: unknown;
  s: number | null;
  t: string | null;
}

/** One WebSocket connection the fake accepted. */
export interface GatewayConnectionRecord {
  url: string;
  query: Record<string, string>;
  compression: "zlib-stream" | "identify" | null;
  openedAt: number;
  closedAt?: number;
  closeCode?: number;
}

/** One IDENTIFY the fake received. */
export interface IdentifyRecord {
  tokenValid: boolean;
  intents: number;
  shard: unknown;
  properties: unknown;
  compress: boolean;
  largeThreshold?: number;
  presence?: unknown;
  receivedAt: number;
}

/** One RESUME the fake received, and whether it worked. */
export interface ResumeRecord {
  sessionId: string;
  seq: number | null;
  resumed: boolean;
  replayed: number;
  receivedAt: number;
}

/** One HEARTBEAT the fake received. */
export interface HeartbeatRecord {
  seq: number | null;
  receivedAt: number;
}

/** What a session is for a client: its numbered dispatches, kept for RESUME. */
interface Session {
  id: string;
  intents: number;
  seq: number;
  events: GatewayPayload[];
  connection: Connection | null;
}

interface Connection {
  ws: WebSocket;
  record: GatewayConnectionRecord;
  session: Session | null;
  identifyCompress: boolean;
  deflate: Deflate | null;
  /** zlib-stream output must go out in order; each frame waits for the one before. */
  sendChain: Promise<void>;
}

/** What the gateway needs from the rest of the fake. */
export interface GatewayHost {
  token: string;
  heartbeatIntervalMs: number;
  disallowedIntents: number;
  /** READY's body, for a new session. */
  ready(sessionId: string, resumeGatewayUrl: string, shard: unknown): Record<string, unknown>;
  /** GUILD_CREATE bodies sent right after READY. */
  guildCreates(): Record<string, unknown>[];
}

/** How many dispatches a session keeps for replay (Discord keeps a few minutes' worth). */
const REPLAY_BUFFER = 1000;

/** The WebSocket side of the fake. */
export class Gateway {
  readonly connections: GatewayConnectionRecord[] = [];
  readonly identifies: IdentifyRecord[] = [];
  readonly resumes: ResumeRecord[] = [];
  readonly heartbeats: HeartbeatRecord[] = [];
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly sessions = new Map<string, Session>();
  private readonly open = new Set<Connection>();
  /** The session new dispatches go to: the one identified or resumed last. */
  private current: Session | null = null;
  /** Called after every gateway event a test may wait for (identify, resume, close). */
  onChange: () => void = () => {};

  constructor(
    private readonly host: GatewayHost,
    readonly url: string,
    readonly resumeUrl: string,
  ) {}

  /** Takes over an HTTP upgrade request aimed at the gateway paths. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req));
  }

  /** Whether a client is identified (or resumed) and connected. */
  get connected(): boolean {
    return this.current?.connection !== null && this.current?.connection !== undefined;
  }

  /** Whether any session exists (connected or waiting to resume). */
  get hasSession(): boolean {
    return this.current !== null;
  }

  /** The current session's intents, or 0. */
  get intents(): number {
    return this.current?.intents ?? 0;
  }

  /**
   * Sends a dispatch (op 0) to the current session and returns its sequence number and the performance.now()
   * taken right before the frame went out. A session whose connection is down keeps the event for RESUME.
   */
  dispatch(t: string, d: unknown): { seq: number; sentAt: number } {
    const session = this.current;
    if (!session) throw new Error("fake Discord: no gateway session; log a client in first");
    return this.dispatchTo(session, t, d);
  }

  /** Closes every client connection: with `code`, or abruptly (no close frame, the client sees 1006). */
  drop(code?: number, reason = "fake Discord dropped the connection"): number {
    const all = [...this.open];
    for (const conn of all) {
      if (code === undefined) conn.ws.terminate();
      else conn.ws.close(code, reason);
    }
    return all.length;
  }

  /** Sends op 7 RECONNECT: the client should close and resume. */
  requestReconnect(): void {
    for (const conn of this.open) this.send(conn, { op: Op.Reconnect, d: null, s: null, t: null });
  }

  /** Sends op 9 INVALID_SESSION; a non-resumable one also forgets the sessions. */
  invalidateSession(resumable: boolean): void {
    for (const conn of this.open) this.send(conn, { op: Op.InvalidSession, d: resumable, s: null, t: null });
    if (!resumable) {
      this.sessions.clear();
      this.current = null;
    }
  }

  /** Closes everything at once, for shutdown. */
  close(): void {
    for (const conn of this.open) {
      conn.ws.terminate();
      conn.deflate?.close();
    }
    this.open.clear();
    this.wss.close();
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    const url = new URL(req.url ?? "/", "ws://fake");
    const query = Object.fromEntries(url.searchParams);
    const record: GatewayConnectionRecord = {
      url: req.url ?? "/",
      query,
      compression: query.compress === "zlib-stream" ? "zlib-stream" : null,
      openedAt: performance.now(),
    };
    this.connections.push(record);
    const conn: Connection = {
      ws,
      record,
      session: null,
      identifyCompress: false,
      deflate: null,
      sendChain: Promise.resolve(),
    };
    this.open.add(conn);
    ws.on("close", (code) => this.onClose(conn, code));
    ws.on("error", () => {});
    ws.on("message", (data) => this.onMessage(conn, data));

    if (query.v !== "10") {
      ws.close(4012, "Invalid API version");
      return;
    }
    if (query.encoding !== undefined && query.encoding !== "json") {
      // ETF is not spoken here; Discord would accept it, the fake says so loudly instead.
      ws.close(4002, "Error while decoding payload (the fake speaks JSON only)");
      return;
    }
    if (query.compress !== undefined && query.compress !== "zlib-stream") {
      ws.close(4002, "Unsupported compression");
      return;
    }
    if (record.compression === "zlib-stream") {
      const deflate = createDeflate();
      conn.deflate = deflate;
    }
    this.send(conn, {
      op: Op.Hello,
      d: { heartbeat_interval: this.host.heartbeatIntervalMs, _trace: ['["fake-gateway",{"micros":0}]'] },
      s: null,
      t: null,
    });
  }

  private onMessage(conn: Connection, data: RawData): void {
    let payload: { op?: unknown; d?: unknown };
    try {
      const text = Array.isArray(data) ? Buffer.concat(data).toString("utf8") : data.toString();
      payload = JSON.parse(text) as { op?: unknown; d?: unknown };
    } catch {
      conn.ws.close(4002, "Error while decoding payload.");
      return;
    }
    const d = (payload.d ?? {}) as Record<string, unknown>;
    switch (payload.op) {
      case Op.Heartbeat: {
        this.heartbeats.push({
          seq: typeof payload.d === "number" ? payload.d : null,
          receivedAt: performance.now(),
        });
        this.send(conn, { op: Op.HeartbeatAck, d: null, s: null, t: null });
        this.onChange();
        return;
      }
      case Op.Identify:
        this.identify(conn, d);
        return;
      case Op.Resume:
        this.resume(conn, d);
        return;
      case Op.PresenceUpdate:
      case Op.VoiceStateUpdate:
      case Op.RequestGuildMembers:
        if (!conn.session) conn.ws.close(4003, "Not authenticated.");
        return;
      default:
        conn.ws.close(4001, "Unknown opcode.");
    }
  }

  private identify(conn: Connection, d: Record<string, unknown>): void {
    const tokenValid = d.token === this.host.token;
    const intents = typeof d.intents === "number" ? d.intents : Number.NaN;
    this.identifies.push({
      tokenValid,
      intents,
      shard: d.shard,
      properties: d.properties,
      compress: d.compress === true,
      ...(typeof d.large_threshold === "number" ? { largeThreshold: d.large_threshold } : {}),
      ...(d.presence === undefined ? {} : { presence: d.presence }),
      receivedAt: performance.now(),
    });
    this.onChange();
    const shard = d.shard ?? [0, 1];
    const refusal = this.identifyRefusal(conn, tokenValid, intents, shard);
    if (refusal) {
      conn.ws.close(...refusal);
      return;
    }
    if (d.compress === true) {
      conn.identifyCompress = true;
      conn.record.compression = "identify";
    }
    const session: Session = {
      id: randomBytes(16).toString("hex"),
      intents,
      seq: 0,
      events: [],
      connection: conn,
    };
    this.sessions.set(session.id, session);
    conn.session = session;
    this.current = session;
    this.dispatchTo(session, "READY", this.host.ready(session.id, this.resumeUrl, shard));
    for (const guild of this.host.guildCreates()) this.dispatchTo(session, "GUILD_CREATE", guild);
  }

  private resume(conn: Connection, d: Record<string, unknown>): void {
    const sessionId = typeof d.session_id === "string" ? d.session_id : "";
    const seq = typeof d.seq === "number" ? d.seq : null;
    const session = this.sessions.get(sessionId);
    const record: ResumeRecord = {
      sessionId,
      seq,
      resumed: false,
      replayed: 0,
      receivedAt: performance.now(),
    };
    this.resumes.push(record);
    if (d.token !== this.host.token) {
      this.onChange();
      conn.ws.close(4004, "Authentication failed.");
      return;
    }
    const oldest = session?.events[0]?.s ?? 1;
    if (!session || (seq !== null && seq + 1 < oldest)) {
      this.onChange();
      // Not resumable: the client must identify again.
      this.send(conn, { op: Op.InvalidSession, d: false, s: null, t: null });
      return;
    }
    // A session has one connection; a resume takes it over from a zombie one.
    if (session.connection && session.connection !== conn) session.connection.ws.terminate();
    session.connection = conn;
    conn.session = session;
    this.current = session;
    const missed = session.events.filter((e) => e.s !== null && e.s > (seq ?? 0));
    for (const event of missed) this.send(conn, event);
    record.resumed = true;
    record.replayed = missed.length;
    this.dispatchTo(session, "RESUMED", { _trace: ['["fake-gateway",{"micros":0}]'] });
    this.onChange();
  }

  /** The close code and reason Discord would answer this IDENTIFY with, if it would refuse it. */
  private identifyRefusal(
    conn: Connection,
    tokenValid: boolean,
    intents: number,
    shard: unknown,
  ): [number, string] | undefined {
    if (conn.session) return [4005, "Already authenticated."];
    if (!tokenValid) return [4004, "Authentication failed."];
    if (!Number.isInteger(intents) || intents < 0) return [4013, "Invalid intent(s)."];
    if (intents & this.host.disallowedIntents) return [4014, "Disallowed intent(s)."];
    if (!Array.isArray(shard) || shard[0] !== 0 || shard[1] !== 1) return [4010, "Invalid shard."];
    return undefined;
  }

  private onClose(conn: Connection, code: number): void {
    conn.record.closedAt = performance.now();
    conn.record.closeCode = code;
    this.open.delete(conn);
    conn.deflate?.close();
    const session = conn.session;
    if (session && session.connection === conn) {
      session.connection = null;
      // A client closing with 1000 or 1001 ends its session on Discord; any other code keeps it resumable.
      if (code === 1000 || code === 1001) {
        this.sessions.delete(session.id);
        if (this.current === session) this.current = null;
      }
    }
    this.onChange();
  }

  private dispatchTo(session: Session, t: string, d: unknown): { seq: number; sentAt: number } {
    session.seq += 1;
    const payload: GatewayPayload = { op: Op.Dispatch, d, s: session.seq, t };
    session.events.push(payload);
    if (session.events.length > REPLAY_BUFFER) session.events.shift();
    const sentAt = performance.now();
    if (session.connection) this.send(session.connection, payload);
    return { seq: session.seq, sentAt };
  }

  private send(conn: Connection, payload: GatewayPayload): void {
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    const json = JSON.stringify(payload);
    const deflate = conn.deflate;
    if (deflate) {
      conn.sendChain = conn.sendChain.then(
        () =>
          new Promise<void>((done) => {
            const chunks: Buffer[] = [];
            const onData = (chunk: Buffer) => chunks.push(chunk);
            deflate.on("data", onData);
            deflate.write(json);
            deflate.flush(zlibConstants.Z_SYNC_FLUSH, () => {
              deflate.off("data", onData);
              if (conn.ws.readyState === conn.ws.OPEN) conn.ws.send(Buffer.concat(chunks));
              done();
            });
          }),
      );
      return;
    }
    if (conn.identifyCompress) conn.ws.send(deflateSync(json));
    else conn.ws.send(json);
  }
}

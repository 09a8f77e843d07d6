import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import { envelopeId, urlToken } from "./ids.ts";

/**
 * Slack's Socket Mode link, as @slack/socket-mode speaks it:
 * - apps.connections.open (app token) hands out `ws://…/link/?ticket=…&app_id=…`; each ticket opens one
 *   connection (an unknown or reused ticket is refused with HTTP 401, like Slack's expired tickets);
 * - on connect the server sends `{type:"hello", num_connections, debug_info, connection_info:{app_id}}`, which
 *   is what makes the client (and bolt's App.start) count as connected;
 * - events go out as envelopes `{envelope_id, payload, type, accepts_response_payload}` and the client answers
 *   each with `{envelope_id, payload?}`: the ack, due within 3 s;
 * - `{type:"disconnect", reason:"refresh_requested"}` asks the client to reconnect (a graceful drop); a
 *   terminated TCP connection is the ungraceful one. Either way the client calls apps.connections.open again.
 * Pings are left to the client (ws answers them with pongs); Slack's own server pings are not sent.
 */

/** How long Slack waits for an ack before showing the user an error. */
export const ACK_DEADLINE_MS = 3000;

/** Envelope types the fake sends. */
export type EnvelopeType = "slash_commands" | "interactive" | "events_api";

type Json = Record<string, unknown>;

/** The answer to one envelope. */
export interface FakeSlackAck {
  envelopeId: string;
  type: EnvelopeType;
  /** performance.now() when the ack frame arrived. */
  receivedAt: number;
  /** receivedAt minus the envelope's sentAt. */
  latencyMs: number;
  /** The ack's payload, when it carried a non-empty one (a slash command's immediate response). */
  payload?: Json | undefined;
  /** Whether it came after Slack's 3 s deadline. */
  late: boolean;
}

/** An envelope the fake sent, for measuring envelope→ack latency. */
export interface FakeSlackEnvelope {
  envelopeId: string;
  /** performance.now() just before the frame was written. */
  sentAt: number;
  /** Resolves when the client acks this envelope. It stays pending if it never does. */
  ack: Promise<FakeSlackAck>;
}

interface Pending {
  type: EnvelopeType;
  sentAt: number;
  payload: Json;
  resolve: (ack: FakeSlackAck) => void;
}

/** The Socket Mode side of the fake: tickets, the WebSocket server and envelopes in flight. */
export class SocketModeServer {
  private readonly wss = new WebSocketServer({ noServer: true, clientTracking: true });
  private readonly tickets = new Set<string>();
  /** Connections that got their hello, oldest first; envelopes go to the newest. */
  private readonly open: WebSocket[] = [];
  private readonly pending = new Map<string, Pending>();
  private connectWaiters: (() => void)[] = [];
  /** Every ack received, in order. */
  readonly acks: FakeSlackAck[] = [];
  /** Connections accepted so far (a reconnect adds one). */
  connects = 0;

  constructor(
    private readonly wsBase: string,
    private readonly appId: string,
    private readonly hooks: {
      /** An ack arrived for an envelope (its payload and the ack). */
      onAck(envelope: { type: EnvelopeType; payload: Json }, ack: FakeSlackAck): void;
      /** A frame that is not a valid ack of a pending envelope. */
      onStray(message: string): void;
    },
  ) {
    this.wss.on("connection", (ws) => this.accept(ws));
  }

  /** A one-time WebSocket URL, as apps.connections.open returns it. */
  issueUrl(): string {
    const ticket = urlToken();
    this.tickets.add(ticket);
    return `${this.wsBase}/link/?ticket=${ticket}&app_id=${this.appId}`;
  }

  /** Takes over an HTTP upgrade to /link/; false when the request is not for the link. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? "/", "http://fake");
    if (url.pathname !== "/link/" && url.pathname !== "/link") return false;
    const ticket = url.searchParams.get("ticket") ?? "";
    if (!this.tickets.delete(ticket)) {
      socket.end("HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return true;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.wss.emit("connection", ws, req));
    return true;
  }

  private accept(ws: WebSocket): void {
    this.connects++;
    this.open.push(ws);
    ws.on("message", (data, isBinary) => this.receive(data.toString(), isBinary));
    ws.on("close", () => this.forget(ws));
    ws.on("error", () => this.forget(ws));
    ws.send(
      JSON.stringify({
        type: "hello",
        num_connections: this.open.length,
        debug_info: { host: "applink-fake-1", build_number: 1, approximate_connection_time: 18060 },
        connection_info: { app_id: this.appId },
      }),
    );
    const waiters = this.connectWaiters;
    this.connectWaiters = [];
    for (const wake of waiters) wake();
  }

  private forget(ws: WebSocket): void {
    const i = this.open.indexOf(ws);
    if (i >= 0) this.open.splice(i, 1);
  }

  private receive(text: string, isBinary: boolean): void {
    const receivedAt = performance.now();
    let frame: unknown;
    try {
      frame = isBinary ? undefined : JSON.parse(text);
    } catch {
      frame = undefined;
    }
    const id = (frame as { envelope_id?: unknown } | undefined)?.envelope_id;
    const pending = typeof id === "string" ? this.pending.get(id) : undefined;
    if (!pending || typeof id !== "string") {
      this.hooks.onStray(`unexpected Socket Mode frame: ${text.slice(0, 200)}`);
      return;
    }
    this.pending.delete(id);
    const payload = (frame as { payload?: unknown }).payload;
    const latencyMs = receivedAt - pending.sentAt;
    const ack: FakeSlackAck = {
      envelopeId: id,
      type: pending.type,
      receivedAt,
      latencyMs,
      payload:
        typeof payload === "object" && payload !== null && Object.keys(payload).length > 0
          ? (payload as Json)
          : undefined,
      late: latencyMs > ACK_DEADLINE_MS,
    };
    this.acks.push(ack);
    this.hooks.onAck({ type: pending.type, payload: pending.payload }, ack);
    pending.resolve(ack);
  }

  /** Whether a connection is open and greeted. */
  get isConnected(): boolean {
    return this.open.length > 0;
  }

  /** Resolves once a connection is open (at once if one is). */
  connected(): Promise<void> {
    if (this.isConnected) return Promise.resolve();
    return new Promise((resolve) => this.connectWaiters.push(resolve));
  }

  /** Sends one envelope on the newest connection; throws when none is open. */
  send(type: EnvelopeType, payload: Json, acceptsResponsePayload: boolean): FakeSlackEnvelope {
    const ws = this.open[this.open.length - 1];
    if (!ws)
      throw new Error("FakeSlack: no Socket Mode connection is open (await fake.socketConnected() first)");
    const id = envelopeId();
    let resolve: (ack: FakeSlackAck) => void = () => {};
    const ack = new Promise<FakeSlackAck>((r) => {
      resolve = r;
    });
    const frame = JSON.stringify({
      envelope_id: id,
      payload,
      type,
      accepts_response_payload: acceptsResponsePayload,
    });
    const sentAt = performance.now();
    this.pending.set(id, { type, sentAt, payload, resolve });
    ws.send(frame);
    return { envelopeId: id, sentAt, ack };
  }

  /**
   * Drops every open connection: `graceful` sends Slack's `disconnect` (refresh_requested) and lets the client
   * close, otherwise the TCP connection is cut, as a network failure would.
   */
  drop(graceful = false): void {
    const sockets = this.open.splice(0);
    for (const ws of sockets) {
      if (graceful) {
        ws.send(
          JSON.stringify({
            type: "disconnect",
            reason: "refresh_requested",
            debug_info: { host: "applink-fake-1" },
          }),
        );
      } else ws.terminate();
    }
  }

  /** Cuts every connection and stops accepting new ones. */
  close(): void {
    this.tickets.clear();
    this.open.splice(0);
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
  }
}

import {
  type App,
  HTTPReceiver,
  type Logger,
  type Receiver,
  SocketModeReceiver,
  type webApi,
} from "@slack/bolt";
import { EaselError } from "../../core/errors.ts";
import { startupFailure } from "../../core/startup.ts";
import { describeSlackError, slackRefusal } from "./errors.ts";

/**
 * How Slack's events reach easel, as bolt's receivers do it: Socket Mode when an app-level token is configured
 * (the self-hosting default: no public URL), the HTTP receiver otherwise (every request verified with the
 * signing secret over its raw body; a bad signature or a timestamp over 5 minutes away gets 401 and runs
 * nothing). The app never knows which.
 */

/** Where the HTTP receiver takes commands and interactions (the manifest's request URLs end with it). */
export const SLACK_EVENTS_PATH = "/slack/events";
/** Where the Web API is unless SLACK_API_URL says otherwise. */
const DEFAULT_SLACK_API = "https://slack.com/api/";
/** How long stop() waits for the Socket Mode connection to close. */
const SOCKET_CLOSE_WAIT_MS = 2_000;

export interface SlackConnectionOptions {
  /** SLACK_APP_TOKEN (xapp-…): Socket Mode. */
  appToken?: string;
  /** SLACK_SIGNING_SECRET: the HTTP receiver (when there is no app token). */
  signingSecret?: string;
  /** SLACK_API_URL: Web API base (tests, proxies). */
  apiUrl?: string;
  /** SLACK_PORT: where the HTTP receiver listens. */
  port: number;
  /** Socket Mode ping timeout, also the step of its reconnect back-off (default 5000 ms). */
  clientPingTimeoutMs?: number;
  /** The Web API client options (Socket Mode's own client takes them too). */
  clientOptions: webApi.WebClientOptions;
  logger: Logger;
  /** Operator log lines: the composition root's sink (src/logging), which redacts them. */
  log: (line: string) => void;
}

/** The receiver of one app: made here, started once the app checked its token, stopped at shutdown. */
export class SlackConnection {
  readonly receiver: SocketModeReceiver | HTTPReceiver;
  readonly mode: "socket" | "http";

  constructor(private readonly options: SlackConnectionOptions) {
    if (options.appToken) {
      this.mode = "socket";
      this.receiver = new SocketModeReceiver({
        appToken: options.appToken,
        logger: options.logger,
        // The Socket Mode client's own WebClient (apps.connections.open) would otherwise retry 100 times.
        installerOptions: { clientOptions: options.clientOptions },
        ...(options.clientPingTimeoutMs ? { clientPingTimeout: options.clientPingTimeoutMs } : {}),
      });
    } else if (options.signingSecret) {
      this.mode = "http";
      this.receiver = new HTTPReceiver({
        signingSecret: options.signingSecret,
        endpoints: SLACK_EVENTS_PATH,
        logger: options.logger,
        processBeforeResponse: false,
      });
    } else {
      throw new EaselError(
        "config",
        "Slack needs SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP)",
      );
    }
  }

  /** The receiver as bolt's App takes it. */
  get boltReceiver(): Receiver {
    return this.receiver as Receiver;
  }

  /** Checks the bot token (auth.test), then connects or listens; a refused token and an unreachable Slack are told apart. */
  async start(app: App): Promise<void> {
    const where = {
      service: "Slack",
      endpoint: this.options.apiUrl ?? DEFAULT_SLACK_API,
      baseVariable: "SLACK_API_URL",
    };
    try {
      await app.init();
    } catch (err) {
      throw startupFailure(err, { ...where, tokenVariable: "SLACK_BOT_TOKEN" }, slackRefusal);
    }
    if (this.receiver instanceof SocketModeReceiver) {
      try {
        await app.start();
      } catch (err) {
        throw startupFailure(err, { ...where, tokenVariable: "SLACK_APP_TOKEN" }, slackRefusal);
      }
    } else {
      try {
        await this.receiver.start(this.options.port);
      } catch (err) {
        throw new EaselError(
          "config",
          `Slack HTTP mode could not listen on SLACK_PORT=${this.options.port} (${describeSlackError(err)})`,
          { cause: err },
        );
      }
    }
    this.options.log(
      this.mode === "socket"
        ? "easel: Slack ready (Socket Mode)"
        : `easel: Slack ready (HTTP on port ${this.options.port}, request URL …${SLACK_EVENTS_PATH})`,
    );
  }

  /** Disconnects (Socket Mode: waits for the socket to close) or stops listening (HTTP). */
  async stop(app: App): Promise<void> {
    if (this.receiver instanceof SocketModeReceiver) {
      const client = this.receiver.client;
      const closed = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, SOCKET_CLOSE_WAIT_MS);
        client.once("disconnected", () => {
          clearTimeout(timer);
          resolve();
        });
      });
      await app.stop().catch(() => undefined);
      await closed;
      return;
    }
    await app.stop().catch(() => undefined);
  }
}

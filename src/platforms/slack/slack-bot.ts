import { App, type webApi } from "@slack/bolt";
import type { ContestClock } from "../../core/ballots.ts";
import type { BotServices } from "../../core/bot-services.ts";
import type { JobRelay } from "../../core/relay.ts";
import { TallyBoard } from "../../core/vote-tally.ts";
import { noRetryClient } from "./keyed-posts.ts";
import { slackLogger } from "./logger.ts";
import { SlackOutlet } from "./outlet.ts";
import { SlackConnection, type SlackConnectionOptions } from "./receiver.ts";
import { ReplySender } from "./replies.ts";
import { SlackRoutes } from "./routes.ts";
import { WorkspaceAdmins } from "./workspace-admins.ts";

/**
 * easel on Slack, in bolt-js's own split: receiving (receiver.ts: Socket Mode or HTTP), routing events to core
 * (routes.ts, with core/command-line.ts and workspace-admins.ts), laying out (blocks.ts) and sending (outlet.ts,
 * keyed-posts.ts, replies.ts). This file only puts them together on one bolt App.
 */

export interface SlackOptions extends Omit<SlackConnectionOptions, "clientOptions" | "logger"> {
  /** SLACK_BOT_TOKEN (xoxb-…). */
  botToken: string;
  /** bolt's, the Web API's and Socket Mode's own debug output, given only with EASEL_DEBUG=1. */
  debug?: (line: string) => void;
  now?: () => number;
}

export { SLACK_EVENTS_PATH } from "./receiver.ts";
export { IMAGINE_THIS_CALLBACK_ID } from "./routes.ts";

/** Web API retries: a few, with back-off; 429s are waited out by the client (Retry-After) within them. */
const RETRY_CONFIG = { retries: 3, factor: 2, minTimeout: 500, maxTimeout: 5_000 };

export class SlackBot {
  readonly app: App;
  private readonly connection: SlackConnection;
  private readonly outlet: SlackOutlet;
  private readonly workspaceAdmins: WorkspaceAdmins;
  private readonly tallies: TallyBoard;

  constructor(services: BotServices, relay: JobRelay, contests: ContestClock, options: SlackOptions) {
    const log = options.log;
    const now = options.now ?? Date.now;
    const logger = slackLogger(log, options.debug);
    const clientOptions: webApi.WebClientOptions = {
      retryConfig: RETRY_CONFIG,
      ...(options.apiUrl ? { slackApiUrl: options.apiUrl } : {}),
    };
    this.connection = new SlackConnection({ ...options, clientOptions, logger });
    this.app = new App({
      token: options.botToken,
      receiver: this.connection.boltReceiver,
      logger,
      clientOptions,
      // auth.test runs in start(), where a refused token becomes an error naming the variable.
      deferInitialization: true,
    });
    // Posts and uploads must not be retried by the client: a retry after a lost answer would post twice.
    const once = noRetryClient(this.app.client, log);
    const replies = new ReplySender(this.app.client, { log, now, once });
    this.outlet = new SlackOutlet(this.app.client, services, replies, { log, once });
    relay.register("slack", this.outlet);
    contests.register("slack", this.outlet);
    this.workspaceAdmins = new WorkspaceAdmins(this.app.client, log, now);
    this.tallies = new TallyBoard(services.votes, { log });
    new SlackRoutes({
      services,
      outlet: this.outlet,
      replies,
      handles: relay,
      admins: this.workspaceAdmins,
      tallies: this.tallies,
      log,
      now,
    }).register(this.app);
  }

  /** The outlet (tests and restarts look at its targets). */
  get jobOutlet(): SlackOutlet {
    return this.outlet;
  }

  /** Checks the bot token, then connects (Socket Mode) or listens on SLACK_PORT (HTTP). */
  async start(): Promise<void> {
    await this.connection.start(this.app);
  }

  /** Disconnects (Socket Mode: waits for the socket to close) or stops listening (HTTP). */
  async stop(): Promise<void> {
    this.tallies.clear();
    await this.connection.stop(this.app);
  }
}

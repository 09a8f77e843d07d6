import { Client, Events, GatewayIntentBits } from "discord.js";
import type { ContestClock } from "../../core/ballots.ts";
import type { BotServices } from "../../core/bot-services.ts";
import { errorText } from "../../core/platform-errors.ts";
import type { JobRelay } from "../../core/relay.ts";
import { startupFailure } from "../../core/startup.ts";
import { TallyBoard } from "../../core/vote-tally.ts";
import { discordCommandData } from "./command-data.ts";
import { DiscordInteractions } from "./interactions.ts";
import { DiscordOutlet } from "./outlet.ts";

/**
 * easel on Discord: a gateway client with the one intent slash commands need (Guilds: the channel and role
 * caches), the commands registered from the neutral definitions, interactions received (interactions.ts) and
 * messages sent (outlet.ts, laid out by layout.ts).
 */

export interface DiscordOptions {
  token: string;
  /** Register commands in this guild only (instant, for development); else globally. */
  guildId?: string;
  /** REST base URL override (DISCORD_API_BASE); the gateway URL then comes from that server. */
  apiBase?: string;
  /** Operator log lines: the composition root's sink (src/logging), which redacts them. */
  log: (line: string) => void;
  /** discord.js's own debug output (gateway, REST), given only with EASEL_DEBUG=1. */
  debug?: (line: string) => void;
}

export class DiscordBot {
  readonly client: Client;
  private readonly outlet: DiscordOutlet;
  private readonly log: (line: string) => void;
  private readonly tallies: TallyBoard;

  constructor(
    services: BotServices,
    relay: JobRelay,
    contests: ContestClock,
    private readonly options: DiscordOptions,
  ) {
    this.log = options.log;
    this.client = new Client({
      intents: [GatewayIntentBits.Guilds],
      ...(options.apiBase ? { rest: { api: options.apiBase } } : {}),
    });
    this.client.on(Events.Warn, (message) => this.log(`easel: Discord warning: ${message}`));
    const debug = options.debug;
    if (debug) {
      // Gateway and REST chatter; the REST lines carry full URLs (interaction tokens): the sink redacts them.
      this.client.on(Events.Debug, (message) => debug(`discord.js: ${message}`));
      this.client.rest.on("restDebug", (message) => debug(`discord.js: ${message}`));
    }
    this.outlet = new DiscordOutlet(this.client, services, {
      applicationId: () => this.client.application?.id ?? this.client.user?.id ?? "",
      ...(options.apiBase ? { apiBase: options.apiBase } : {}),
      log: this.log,
    });
    relay.register("discord", this.outlet);
    contests.register("discord", this.outlet);
    this.tallies = new TallyBoard(services.votes, { log: this.log });
    const interactions = new DiscordInteractions(services, this.outlet, relay, this.tallies);
    this.client.on(Events.InteractionCreate, (interaction) => {
      interactions.handle(interaction).catch((err: unknown) => {
        this.log(`easel: a Discord interaction failed: ${errorText(err)}`);
      });
    });
    this.client.on(Events.Error, (err) => this.log(`easel: Discord client error: ${errorText(err)}`));
  }

  /** Logs in and registers the commands; a refused token or an unreachable Discord is one clear error. */
  async start(): Promise<void> {
    try {
      const ready = new Promise<void>((resolve) => this.client.once(Events.ClientReady, () => resolve()));
      await this.client.login(this.options.token);
      await ready;
      const data = discordCommandData();
      const application = this.client.application;
      if (!application) throw new Error("Discord did not say which application this bot is");
      if (this.options.guildId) await application.commands.set(data, this.options.guildId);
      else await application.commands.set(data);
    } catch (err) {
      throw startupFailure(
        err,
        {
          service: "Discord",
          endpoint: this.options.apiBase ?? DEFAULT_DISCORD_API,
          baseVariable: "DISCORD_API_BASE",
          tokenVariable: "DISCORD_TOKEN",
        },
        discordRefusal,
      );
    }
    this.log(
      `easel: Discord ready as ${this.client.user?.tag ?? "?"}; commands registered ${
        this.options.guildId ? `in guild ${this.options.guildId}` : "globally"
      }`,
    );
  }

  async stop(): Promise<void> {
    this.tallies.clear();
    this.outlet.destroy();
    await this.client.destroy();
  }
}

/** Where discord.js talks to unless DISCORD_API_BASE says otherwise. */
const DEFAULT_DISCORD_API = "https://discord.com/api";

/** Why Discord refused the token, when that is what `err` says (a 401, or discord.js's TokenInvalid). */
function discordRefusal(err: unknown): string | undefined {
  const { code, status } = err as { code?: unknown; status?: unknown };
  if (code === "TokenInvalid") return "TokenInvalid: Discord does not accept this token";
  if (status === 401) return "401 Unauthorized";
  return undefined;
}

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { JobState } from "../src/core/job.ts";
import { Store } from "../src/store/index.ts";
import {
  FakeDiscord,
  type FakeMessage,
  type InteractionHandle,
  MessageFlag,
} from "./fakes/fake-discord/index.ts";
import { contentPolicy, FakeOpenAi, type FakeOpenAiCall, type FakeReply } from "./fakes/fake-openai.ts";
import { FakeSlack, type FakeSlackMessage } from "./fakes/fake-slack/index.ts";

/**
 * easel as `npm start` runs it (src/main.ts in a child process, configured only by its environment) against
 * a fake Discord, a fake Slack and a fake OpenAI (the renderer) that live in this process and so outlive every
 * SIGKILL of the child. A rig boots the child on one data folder again and again ("lives"), sends `/imagine`
 * on both platforms, kills the child at moments a test aims (the fakes can hold a request before or after it
 * takes effect, lose its answer, or hang a render) and, once a last life has drained everything, counts what
 * each member would see, from the fakes' own records and without deduplicating anything: results posted,
 * failure notices, status messages (cards) and the delivery keys they carry. SQLite is read only to map each
 * platform event to its job and to check the database's integrity; every count comes from the fakes.
 *
 * Everything stays on 127.0.0.1: the child is given only the fakes' addresses and no proxy settings.
 */

export type Platform = "discord" | "slack";

/** One `/imagine` a member sent, and what its acknowledgement said. */
export interface SentRequest {
  platform: Platform;
  /** The platform event id easel keys the job by (Discord interaction id, `slack:` + trigger id). */
  eventId: string;
  /** Unique in the prompt (and so in every title): `T12z` (a capital: never part of a lower-case job id). */
  tag: string;
  prompt: string;
  userId: string;
  /** The life it was sent in. */
  life: number;
  discord?: InteractionHandle;
  /** Slack: the command's response_url (its ephemeral answers are counted through it). */
  responseUrl?: string;
  /** Slack: the ack frame's text, once it came. */
  slackAck?: string;
}

/** What one member sees of one request, counted on the fakes. */
export interface Outcome {
  request: SentRequest;
  /** Acknowledged as queued (Discord: a deferred reply; Slack: the "Queued…" ack). */
  acked: boolean;
  /** Acknowledged with a refusal (the limit named), no job. */
  refused: boolean;
  jobId?: string;
  state?: JobState;
  /** The job's error code, when it failed. */
  error?: string;
  /** Visible posts of the result (Discord messages showing its image, Slack uploads of its files). */
  results: number;
  /** Visible failure notices (Discord messages showing the failure; Slack ephemeral notices and DMs). */
  failures: number;
  /** Slack: status messages (cards) in the channel for the job. Discord: 0. */
  cards: number;
  /** Slack: cards showing the failure (the card turns into it; the ephemeral notice pings the member). */
  failureCards: number;
  /** Status messages left showing a waiting state (thinking…, Queued, Rendering) after the job ended. */
  stale: number;
  /** Delivery keys on its posts (Slack metadata and file names, Discord nonces). */
  keys: string[];
}

export interface Tally {
  outcomes: Outcome[];
  /** Acknowledged requests the member never saw a result or failure for. */
  lost: Outcome[];
  /** Requests with more than one visible result, failure notice or status card, or a result beside a failure. */
  doubled: Outcome[];
  stale: Outcome[];
  /** Jobs not in a final state (or whose failure was never marked shown) after the last life. */
  unfinished: { id: string; state: JobState }[];
  integrity: string[];
  jobs: number;
}

/** One bot message on a fake, read for counting. */
interface Seen {
  platform: Platform;
  discord?: FakeMessage;
  slack?: FakeSlackMessage;
  /**
   * result: shows the image (a Discord message, a Slack upload); failure: a failure notice (a Discord message,
   * a Slack ephemeral notice or DM); card: a Slack status message, `card` telling what it shows now (the
   * result, the failure, or still waiting); waiting: a Discord status still waiting (thinking…, Queued,
   * Rendering).
   */
  kind: "result" | "failure" | "card" | "waiting" | "other";
  card?: "result" | "failure" | "waiting";
  keys: string[];
}

/** Bot messages by what names them (see CrashRig.index). */
export interface SeenIndex {
  byTag: Map<string, Seen[]>;
  byJob: Map<string, Seen[]>;
  byId: Map<string, Seen[]>;
  byThread: Map<string, Seen[]>;
}

/** A child process of easel, one life. */
export interface Life {
  index: number;
  child: ChildProcess;
  output(): string;
  /** SIGKILL now; resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM (graceful stop); resolves with the exit code. */
  stop(): Promise<number | null>;
  exited: Promise<void>;
}

export interface RigOptions {
  platforms?: readonly Platform[];
  /** Extra environment for the child (limits). */
  env?: Record<string, string>;
  /** Members per platform to spread requests over (default 40, so that per-member caps seldom bite). */
  members?: number;
}

export const GENERAL = "C0123456789";
const SLACK_USER = (i: number) => `U0CRASH${String(i).padStart(4, "0")}`;
const DISCORD_USER = (i: number) => String(1300000000000000000n + BigInt(i));
/** What a waiting status says (presenter.ts), or Discord's deferred "thinking…" (no content). */
const WAITING = /^(Queued|Rendering|Starting|The renderer hiccuped)/;

export class CrashRig {
  readonly requests: SentRequest[] = [];
  lives = 0;
  private current: Life | undefined;
  private seq = 0;
  private userTurn = 0;
  /** One-shot render hang (aimed "running" kills). */
  private hangNext: ((call: FakeOpenAiCall) => void) | undefined;

  private constructor(
    readonly discord: FakeDiscord | undefined,
    readonly slack: FakeSlack | undefined,
    readonly openai: FakeOpenAi,
    readonly dataDir: string,
    private readonly modelsDir: string,
    private readonly options: RigOptions,
  ) {
    openai.onImageRequest = (call) => this.renderReply(call);
  }

  static async start(options: RigOptions = {}): Promise<CrashRig> {
    const platforms = options.platforms ?? ["discord", "slack"];
    const members = options.members ?? 40;
    const discord = platforms.includes("discord")
      ? await FakeDiscord.start({ heartbeatIntervalMs: 1_000 })
      : undefined;
    const slack = platforms.includes("slack")
      ? await FakeSlack.start({
          users: Array.from({ length: members }, (_, i) => ({ id: SLACK_USER(i), name: `member${i}` })),
        })
      : undefined;
    const openai = await FakeOpenAi.start();
    const dataDir = await mkdtemp(join(tmpdir(), "easel-crash-data-"));
    // No model folder: the renderer is the OpenAI backend against the fake (fast, and scriptable per request).
    const modelsDir = await mkdtemp(join(tmpdir(), "easel-crash-models-"));
    return new CrashRig(discord, slack, openai, dataDir, modelsDir, { ...options, members });
  }

  /** Closes the fakes and removes the folders (kills a child still alive). */
  async close(): Promise<void> {
    await this.current?.kill();
    await this.discord?.close();
    await this.slack?.close();
    await this.openai.close();
    await rm(this.dataDir, { recursive: true, force: true });
    await rm(this.modelsDir, { recursive: true, force: true });
  }

  /** Prompts ending in `-policy` are refused by the provider (a visible failure); the rest render. */
  private renderReply(call: FakeOpenAiCall): FakeReply | undefined {
    const hang = this.hangNext;
    if (hang) {
      this.hangNext = undefined;
      hang(call);
      return { kind: "hang" };
    }
    if (String(call.body.prompt ?? "").includes("-policy")) return contentPolicy();
    return undefined;
  }

  /** The next render request is never answered; resolves when it arrives (the job is running then). */
  hangNextRender(): Promise<FakeOpenAiCall> {
    return new Promise((resolveHang) => {
      this.hangNext = resolveHang;
    });
  }

  /** Stops hanging renders that have not started yet. */
  cancelHang(): void {
    this.hangNext = undefined;
  }

  /** Starts a life: easel as `npm start`, on the rig's data folder; resolves once it serves every platform. */
  async boot(timeoutMs = 60_000): Promise<Life> {
    if (this.current && this.current.child.exitCode === null && this.current.child.signalCode === null) {
      throw new Error("crash rig: the previous life is still running");
    }
    const index = ++this.lives;
    const socketsBefore = this.slack?.socketConnects ?? 0;
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      EASEL_MODELS_DIR: this.modelsDir,
      EASEL_DATA_DIR: this.dataDir,
      OPENAI_API_KEY: this.openai.apiKey,
      OPENAI_BASE_URL: this.openai.baseUrl,
      // The fake still offers it, and it renders the small sizes (256², 512²) that keep every post light.
      OPENAI_IMAGE_MODEL: "dall-e-2",
      OPENAI_MAX_RPM: "100000",
      // One render at a time, so that the others wait in the queue: the "queued" window.
      OPENAI_CONCURRENCY: "1",
      OPENAI_DAILY_IMAGES_PER_USER: "0",
      OPENAI_DAILY_IMAGES_PER_GUILD: "0",
      ...(this.discord ? { DISCORD_TOKEN: this.discord.token, DISCORD_API_BASE: this.discord.apiBase } : {}),
      ...(this.slack
        ? {
            SLACK_BOT_TOKEN: this.slack.botToken,
            SLACK_APP_TOKEN: this.slack.appToken,
            SLACK_API_URL: this.slack.apiUrl,
          }
        : {}),
      ...this.options.env,
    };
    let output = "";
    const child = spawn(process.execPath, ["--import", "tsx", resolve("src/main.ts")], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const keep = (d: Buffer) => {
      output = (output + d.toString()).slice(-20_000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    const exited = new Promise<void>((done) => child.once("exit", () => done()));
    const gone = () => child.exitCode !== null || child.signalCode !== null;
    const life: Life = {
      index,
      child,
      output: () => output,
      exited,
      async kill() {
        if (!gone()) child.kill("SIGKILL");
        await exited;
      },
      async stop() {
        if (!gone()) child.kill("SIGTERM");
        await exited;
        return child.exitCode;
      },
    };
    this.current = life;
    const serving = new RegExp(`serving ${this.platformWords()}`);
    await this.until(
      () => {
        if (gone()) throw new Error(`crash rig: easel exited while starting (life ${index}):\n${output}`);
        return serving.test(output) && (this.slack ? this.slack.socketConnects > socketsBefore : true);
      },
      timeoutMs,
      `easel to start (life ${index})`,
    );
    if (this.slack) await this.slack.socketConnected();
    return life;
  }

  private platformWords(): string {
    return [this.discord ? "discord" : undefined, this.slack ? "slack" : undefined]
      .filter(Boolean)
      .join(" and ");
  }

  /** Polls `probe` every 10 ms until it is true (the fakes answer the child in this process's event loop). */
  async until(probe: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!probe()) {
      if (performance.now() > deadline) {
        throw new Error(`crash rig: timed out after ${timeoutMs} ms waiting for ${what}\n${this.tail()}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private tail(): string {
    return (this.current?.output() ?? "").slice(-3000);
  }

  private nextUser(): number {
    const i = this.userTurn % (this.options.members ?? 40);
    this.userTurn++;
    return i;
  }

  /**
   * Sends one `/imagine` on `platform` (the prompt gets a unique tag; `-policy` at its end makes the provider
   * refuse it). Returns at once; the acknowledgement is looked up later (`answered`, `queued`, `acked`).
   */
  send(platform: Platform, prompt = "a lighthouse"): SentRequest {
    const tag = `T${++this.seq}z`;
    const [text, policy] = prompt.endsWith("-policy") ? [prompt.slice(0, -7), "-policy"] : [prompt, ""];
    const full = `${text} ${tag}${policy} --size 256x256`;
    const user = this.nextUser();
    if (platform === "discord") {
      if (!this.discord) throw new Error("crash rig: no Discord");
      const handle = this.discord.slashCommand({
        name: "imagine",
        userId: DISCORD_USER(user),
        userName: `member${user}`,
        options: [{ name: "prompt", value: full }],
      });
      const sent: SentRequest = {
        platform,
        eventId: handle.id,
        tag,
        prompt: full,
        userId: DISCORD_USER(user),
        life: this.lives,
        discord: handle,
      };
      this.requests.push(sent);
      return sent;
    }
    if (!this.slack) throw new Error("crash rig: no Slack");
    const payload = this.slack.slashCommandPayload({
      command: "/imagine",
      text: full,
      userId: SLACK_USER(user),
    });
    const sent: SentRequest = {
      platform,
      eventId: `slack:${payload.trigger_id}`,
      tag,
      prompt: full,
      userId: SLACK_USER(user),
      life: this.lives,
      ...(payload.response_url ? { responseUrl: payload.response_url } : {}),
    };
    this.requests.push(sent);
    void this.slack.sendEnvelope("slash_commands", payload, true).ack.then((ack) => {
      sent.slackAck = String(ack.payload?.text ?? "");
    });
    return sent;
  }

  /** Whether the request has been acknowledged (queued or refused). */
  answered(request: SentRequest): boolean {
    if (request.platform === "slack") return request.slackAck !== undefined;
    return this.discordCallback(request) !== undefined;
  }

  /** Acknowledged as queued: a job exists that easel owes the member an outcome for. */
  queued(request: SentRequest): boolean {
    if (request.platform === "slack") return request.slackAck?.startsWith("Queued") === true;
    return this.discordCallback(request) === 5;
  }

  private discordCallback(request: SentRequest): number | undefined {
    if (!this.discord || !request.discord) return undefined;
    return this.discord.interaction(request.discord).callback?.type;
  }

  /** Resolves once every request in `requests` has been answered. */
  async acked(requests: readonly SentRequest[], timeoutMs = 15_000): Promise<void> {
    await this.until(() => requests.every((r) => this.answered(r)), timeoutMs, "the acknowledgements");
  }

  /**
   * Resolves once every acknowledged request shows an outcome on its platform (a result or a failure notice),
   * or after `timeoutMs`, with the acknowledged requests still showing none (empty: drained). Stop the life
   * (SIGTERM lets its last edits finish) before the tally, which counts everything else.
   */
  async drained(timeoutMs = 30_000): Promise<SentRequest[]> {
    const done = new Set<SentRequest>();
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const index = this.index();
      for (const r of this.requests) {
        if (done.has(r) || !this.queued(r)) continue;
        // Its outcome shows. (A status left waiting beside it, or a second post, is for the tally to count.)
        const seen = this.seen(r, undefined, index);
        if (seen.results + seen.failures + seen.failureCards > 0) done.add(r);
      }
      const open = this.requests.filter((r) => !done.has(r) && this.queued(r));
      if (open.length === 0 || performance.now() > deadline) return open;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Resolves once each request's status message shows on its platform as easel's own: on Discord the deferred
   * reply has been edited (easel recorded it as the job's status message first), on Slack the card is posted.
   */
  async bound(requests: readonly SentRequest[], timeoutMs = 15_000): Promise<void> {
    await this.until(
      () => {
        const index = this.index();
        return requests.every((r) => {
          if (!this.queued(r)) return this.answered(r);
          if (r.platform === "slack") return this.seen(r, undefined, index).cards > 0;
          const original = r.discord ? this.discord?.originalMessage(r.discord) : undefined;
          return original !== undefined && (original.flags & MessageFlag.Loading) === 0;
        });
      },
      timeoutMs,
      "the status messages",
    );
  }

  /** What the fakes hold for one request: for a failure message. */
  explain(request: SentRequest): string {
    const seen = this.seen(request);
    let detail = "";
    if (request.discord && this.discord) {
      const interaction = this.discord.interaction(request.discord);
      const original = this.discord.originalMessage(request.discord);
      const calls = this.discord.requests
        .filter((r) => r.path.includes(request.discord?.token ?? "-") || r.path.includes(interaction.id))
        .map(
          (r) =>
            `${r.method} ${r.route ?? r.path} ${r.status}${r.held ? ` held ${r.held}` : ""}${r.lostAnswer ? " lost" : ""}`,
        );
      detail = `callback ${interaction.callback?.type ?? "none"}; original ${JSON.stringify(original?.content ?? null)} flags ${original?.flags ?? "-"}; ${calls.join(", ")}`;
    } else if (this.slack) {
      detail = `ack ${JSON.stringify(request.slackAck ?? null)}`;
    }
    return `${request.platform} ${request.tag} (life ${request.life}): results ${seen.results}, failures ${seen.failures}, cards ${seen.cards} (failure ${seen.failureCards}), stale ${seen.stale}; ${detail}`;
  }

  // ---- Counting what members see ----------------------------------------------------------------------------

  /**
   * Every bot message on the fakes, read once and indexed by what names its request or job: the request's tag
   * (in every title), the job id (Discord footers and file names; Slack delivery keys and file names), the
   * message id (Discord replies and follow-ups) and the thread (Slack uploads). Counting is then cheap for
   * thousands of requests; nothing is merged or deduplicated, each message counts where it shows.
   */
  index(): SeenIndex {
    const index: SeenIndex = { byTag: new Map(), byJob: new Map(), byId: new Map(), byThread: new Map() };
    const add = <K>(map: Map<K, Seen[]>, key: K, seen: Seen) => {
      const list = map.get(key);
      if (list) {
        if (!list.includes(seen)) list.push(seen);
      } else map.set(key, [seen]);
    };
    // easel names its files `easel-<job>-<n>.png`; on Slack the upload's delivery key is in the name as well.
    const file = (name: string) => /(?:^|\.)easel-([0-9a-z]+)-/.exec(name)?.[1];
    if (this.discord) {
      const fake = this.discord;
      const botId = fake.botUser.id;
      const messages: FakeMessage[] = [];
      for (const guild of fake.guilds) for (const c of guild.channels) messages.push(...fake.messages(c.id));
      const users = new Set(this.requests.filter((r) => r.platform === "discord").map((r) => r.userId));
      for (const user of users) messages.push(...fake.dmMessages(user));
      for (const m of messages) {
        if ((m.author as { id?: string }).id !== botId) continue;
        const footer = m.embeds.map((e) => String((e.footer as { text?: unknown })?.text ?? "")).join(" ");
        const seen: Seen = {
          platform: "discord",
          discord: m,
          kind: m.attachments.some((a) => file(a.filename) !== undefined)
            ? "result"
            : /(^| )Job [0-9a-z]+/.test(footer)
              ? "failure"
              : (m.flags & MessageFlag.Loading) !== 0 || WAITING.test(m.content)
                ? "waiting"
                : "other",
          keys: typeof m.nonce === "string" ? [m.nonce] : [],
        };
        add(index.byId, m.id, seen);
        for (const tag of tagsIn(`${m.content} ${JSON.stringify(m.embeds)}`)) add(index.byTag, tag, seen);
        for (const job of footer.matchAll(/Job ([0-9a-z]+)/g)) add(index.byJob, job[1] as string, seen);
        for (const a of m.attachments) {
          const job = file(a.filename);
          if (job) add(index.byJob, job, seen);
        }
      }
    }
    if (this.slack) {
      const fake = this.slack;
      const botId = fake.config.botUserId;
      const names = new Map(fake.files.map((f) => [f.id, f.name]));
      const channels = [
        GENERAL,
        ...new Set(this.requests.filter((r) => r.platform === "slack").map((r) => `D${r.userId.slice(1)}`)),
      ];
      for (const channel of channels) {
        for (const m of fake.messages(channel)) {
          if (m.deleted || m.user !== botId) continue;
          const files = (m.files ?? []).map((id) => names.get(id) ?? "");
          const key =
            m.metadata?.event_type === "easel_delivery"
              ? String((m.metadata.event_payload as { key?: unknown } | undefined)?.key ?? "")
              : undefined;
          const top = m.thread_ts === undefined || m.thread_ts === m.ts;
          let kind: Seen["kind"];
          if (files.length > 0 && !m.ephemeral) kind = "result";
          else if (m.ephemeral) kind = m.via === "ack" || WAITING.test(m.text) ? "other" : "failure";
          else if (channel.startsWith("D")) kind = "failure";
          else kind = top ? "card" : "other";
          // What a card shows, by its buttons: a result has Delete, a failure only Try again, a wait Cancel.
          const blocks = JSON.stringify(m.blocks ?? []);
          const card: Seen["card"] = /"d:[0-9a-z]+"/.test(blocks)
            ? "result"
            : /"r:[0-9a-z]+"/.test(blocks) && !/"x:[0-9a-z]+"/.test(blocks)
              ? "failure"
              : "waiting";
          const keys = [
            ...(key ? [key] : []),
            ...files.flatMap((n) => /(?:^|\.)([0-9a-z]+-r[0-9a-z]+)\./.exec(n)?.[1] ?? []),
          ];
          const seen: Seen = {
            platform: "slack",
            slack: m,
            kind,
            keys,
            ...(kind === "card" ? { card } : {}),
          };
          add(index.byId, `${m.channel}/${m.ts}`, seen);
          for (const tag of tagsIn(`${m.text} ${JSON.stringify(m.blocks ?? [])}`))
            add(index.byTag, tag, seen);
          if (key) add(index.byJob, key.split("-")[0] ?? "", seen);
          for (const n of files) {
            const job = file(n);
            if (job) add(index.byJob, job, seen);
          }
          if (!top && m.thread_ts !== undefined) add(index.byThread, m.thread_ts, seen);
        }
      }
    }
    return index;
  }

  /** The visible posts for one request, counted on the fakes (the job id, when known, widens the search). */
  seen(
    request: SentRequest,
    jobId?: string,
    index: SeenIndex = this.index(),
  ): Omit<Outcome, "request" | "acked" | "refused" | "state"> {
    const mine = new Set<Seen>(index.byTag.get(request.tag) ?? []);
    let job = jobId;
    if (request.platform === "discord" && this.discord && request.discord) {
      const interaction = this.discord.interaction(request.discord);
      for (const id of [interaction.originalMessageId, ...interaction.followUpIds]) {
        for (const seen of id ? (index.byId.get(id) ?? []) : []) mine.add(seen);
      }
    }
    if (request.platform === "slack") {
      // Its private answers through its response_url, and the job named by its card's delivery key.
      const record = this.slack?.responseUrlRecords.find((r) => r.url === request.responseUrl);
      for (const ts of record?.postedTs ?? []) {
        for (const seen of index.byId.get(`${GENERAL}/${ts}`) ?? []) mine.add(seen);
      }
      job ??= [...mine]
        .flatMap((m) => (m.kind === "card" ? m.keys : []))
        .find(Boolean)
        ?.split("-")[0];
    }
    for (const seen of job ? (index.byJob.get(job) ?? []) : []) mine.add(seen);
    // A Slack upload shows in its card's thread.
    for (const card of [...mine]) {
      if (card.slack && card.kind === "card") {
        for (const seen of index.byThread.get(card.slack.ts) ?? [])
          if (seen.kind === "result") mine.add(seen);
      }
    }
    const out = { results: 0, failures: 0, cards: 0, failureCards: 0, stale: 0, keys: [] as string[] };
    for (const m of mine) {
      // A DM belongs to its own member only.
      if (m.slack?.channel.startsWith("D") && m.slack.channel !== `D${request.userId.slice(1)}`) continue;
      if (m.slack?.ephemeral && m.slack.ephemeralUser !== request.userId) continue;
      out.keys.push(...m.keys);
      if (m.kind === "result") out.results++;
      else if (m.kind === "failure") out.failures++;
      else if (m.kind === "card") {
        out.cards++;
        if (m.card === "failure") out.failureCards++;
        if (m.card === "waiting") out.stale++;
      } else if (m.kind === "waiting") out.stale++;
    }
    return { ...out, ...(job ? { jobId: job } : {}) };
  }

  /**
   * Counts every request's outcome. Call after the last life has stopped: it opens the data folder to map each
   * event to its job and to run SQLite's integrity check.
   */
  tally(): Tally {
    if (this.current && this.current.child.exitCode === null && this.current.child.signalCode === null) {
      throw new Error("crash rig: stop the last life before counting");
    }
    const store = Store.open(this.dataDir);
    try {
      const integrity = store.integrityCheck();
      const index = this.index();
      const outcomes: Outcome[] = this.requests.map((request) => {
        const job = store.jobs.getJobByEventId(request.eventId);
        const acked = this.queued(request);
        const refused = this.answered(request) && !acked;
        return {
          request,
          acked,
          refused,
          ...(job ? { state: job.state } : {}),
          ...(job?.errorCode ? { error: job.errorCode } : {}),
          ...this.seen(request, job?.id, index),
        };
      });
      const jobs = store.jobs.listJobs({});
      const unnotified = new Set(store.jobs.listUnnotifiedFailures().map((j) => j.id));
      const unfinished = jobs
        .filter(
          (j) =>
            !["delivered", "failed", "undeliverable", "cancelled"].includes(j.state) || unnotified.has(j.id),
        )
        .map((j) => ({ id: j.id, state: j.state }));
      return {
        outcomes,
        lost: outcomes.filter((o) => o.acked && o.results + o.failures + o.failureCards === 0),
        doubled: outcomes.filter(
          (o) =>
            o.results > 1 ||
            o.failures > 1 ||
            o.cards > 1 ||
            (o.results > 0 && o.failures + o.failureCards > 0),
        ),
        stale: outcomes.filter((o) => o.stale > 0),
        unfinished,
        integrity,
        jobs: jobs.length,
      };
    } finally {
      store.close();
    }
  }
}

/** The request tags (`T12z`) in a text. */
function tagsIn(text: string): string[] {
  return text.match(/(?<![0-9A-Za-z])T\d+z(?![0-9A-Za-z])/g) ?? [];
}

/** One line per doubtful outcome, for assertion messages and the soak's report. */
export function describeOutcomes(outcomes: readonly Outcome[]): string {
  return outcomes
    .map(
      (o) =>
        `${o.request.platform} ${o.request.tag} job ${o.jobId ?? "?"} (${o.state ?? "no job"}${o.error ? ` ${o.error}` : ""}, life ${o.request.life}): ` +
        `results ${o.results}, failures ${o.failures}, cards ${o.cards} (failure ${o.failureCards}), stale ${o.stale}, keys [${o.keys.join(" ")}]`,
    )
    .join("\n");
}

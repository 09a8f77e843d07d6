import { createHash } from "node:crypto";
import type { Actor, BotServices } from "./bot-services.ts";
import { pressButton } from "./button-press.ts";
import { encodeButtonId } from "./buttons.ts";
import { latestPosted } from "./delivery.ts";
import { imageFile, winnerFileName } from "./image-files.ts";
import { type ImagineOutcome, imagine } from "./imagine.ts";
import type { Job } from "./job.ts";
import { BOT_MESSAGES } from "./messages.ts";
import {
  type MessageModel,
  presentArenaCalledOff,
  presentArenaReveal,
  presentContestResult,
} from "./presenter.ts";
import type { OutgoingFile } from "./relay.ts";
import type { BackendName, Requester } from "./request.ts";
import { randomSeed } from "./request.ts";
import {
  type Ballot,
  DOUBLE_CLICK_MS,
  type EloSettings,
  type Tally,
  type VoteChange,
  winnerOf,
} from "./voting.ts";

/**
 * Voting as members meet it: a press on a vote button (checked: bots, self-votes, closed or deleted results),
 * contests that close at their deadline and announce a winner (timers rebuilt from the database on start, the
 * announcement posted once), and the arena (`/compare`): two models, one prompt, shown blind as A and B,
 * revealed and rated with Elo when the vote closes.
 */

/** A vote press that counted: what it changed, and what the presser is told. */
export interface CountedVote {
  ok: true;
  ballot: Ballot;
  change: VoteChange;
  choice: number;
  tally: Tally;
  /** The private answer to the presser ("Your vote for image 2 counts."). */
  confirmation: string;
  /** Whether the message shows the counts (the arena hides them until its reveal). */
  countsShown: boolean;
}

/** What a vote press did. */
export type VoteOutcome = CountedVote | { ok: false; message: string };

/** The defaults of the vote settings (GuildSettings.contestMinutes, selfVote). */
export const DEFAULT_CONTEST_MINUTES = 60;

/** Records a press of vote button `choice` on ballot `ballotId` (a result's job id or an arena match id). */
export function castVote(
  services: BotServices,
  actor: Actor,
  ballotId: string,
  choice: number,
  now: number,
): VoteOutcome {
  if (actor.isBot) return { ok: false, message: BOT_MESSAGES.botsMayNotVote };
  let ballot = services.votes.ballot(ballotId);
  if (!ballot) {
    // A result's ballot opens with its first vote.
    const job = services.jobs.get(ballotId);
    if (!job || job.request.count < 2) return { ok: false, message: BOT_MESSAGES.jobGone };
    ballot = services.votes.openBallot(resultBallot(job, "result", now));
  }
  if (ballot.closedBy === "deleted") return { ok: false, message: BOT_MESSAGES.voteOnDeleted };
  if (ballot.closedAt !== undefined || (ballot.closesAt !== undefined && ballot.closesAt <= now)) {
    return { ok: false, message: BOT_MESSAGES.votingClosed };
  }
  if (!Number.isInteger(choice) || choice < 1 || choice > ballot.choices) {
    return { ok: false, message: BOT_MESSAGES.jobGone };
  }
  if (ballot.kind !== "arena" && services.jobs.withheld(ballotId).includes(choice)) {
    return { ok: false, message: BOT_MESSAGES.imageWithheld(choice) };
  }
  const me = actor.requester;
  const guild = services.settings.guild(me.platform, me.workspaceId);
  if (ballot.ownerId === me.userId && ballot.platform === me.platform && guild.selfVote !== true) {
    return { ok: false, message: BOT_MESSAGES.noSelfVote };
  }
  const change = services.votes.press(ballot.id, me, choice, now, DOUBLE_CLICK_MS);
  const arena = ballot.kind === "arena";
  return {
    ok: true,
    ballot,
    change,
    choice,
    tally: services.votes.tally(ballot.id),
    confirmation: BOT_MESSAGES.voted(change, BOT_MESSAGES.voteChoice(arena, choice)),
    countsShown: !arena,
  };
}

/** Marks a result's ballot deleted (its message is gone), so that stale buttons say so. */
export function closeDeletedBallot(services: BotServices, job: Job, now: number): void {
  if (job.request.count < 2 && !job.request.arena) return;
  const id = job.request.arena?.matchId ?? job.id;
  if (!services.votes.ballot(id)) services.votes.openBallot(resultBallot(job, "result", now));
  services.votes.close(id, now, "deleted", undefined);
}

function resultBallot(job: Job, kind: "result" | "contest", now: number, closesAt?: number) {
  const r = job.request.requester;
  return {
    id: job.id,
    kind,
    platform: r.platform,
    workspaceId: r.workspaceId,
    channelId: r.channelId,
    ownerId: r.userId,
    choices: job.request.count,
    createdAt: now,
    ...(closesAt === undefined ? {} : { closesAt }),
  };
}

/**
 * Where a platform posts a contest's or a match's closing announcement. The clock asks only while none is
 * recorded as posted for `recordAs` (a job id); the announcer records it as that job's "announcement", under a
 * delivery key written before the post, and looks the key up before posting again (a retry, the next start).
 */
export interface Announcer {
  announce(ballot: Ballot, model: MessageModel, files: OutgoingFile[], recordAs: string): Promise<void>;
}

export interface ContestClockOptions {
  elo: EloSettings;
  /** Waits before retrying a failed announcement (default 5 s, 30 s, 2 min; then the next start). */
  retryDelaysMs?: readonly number[];
  /** Operator log lines: the composition root's sink, injected (core prints nothing itself). */
  log: (line: string) => void;
  now?: () => number;
}

/** Closes contests and arena matches at their deadlines, also across restarts. */
export class ContestClock {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly announcers = new Map<Requester["platform"], Announcer>();
  private readonly log: (line: string) => void;
  private readonly now: () => number;
  private readonly closing = new Set<Promise<void>>();
  /** Announcements that failed, retried after these delays before waiting for the next start. */
  private readonly retryDelaysMs: readonly number[];

  constructor(
    private readonly services: BotServices,
    private readonly options: ContestClockOptions,
  ) {
    this.log = options.log;
    this.now = options.now ?? Date.now;
    this.retryDelaysMs = options.retryDelaysMs ?? [5_000, 30_000, 120_000];
  }

  register(platform: Requester["platform"], announcer: Announcer): void {
    this.announcers.set(platform, announcer);
  }

  /** Rebuilds the timers from the database and posts announcements a crash left unposted. */
  start(): void {
    for (const ballot of this.services.votes.openDeadlines()) this.schedule(ballot);
    for (const ballot of this.services.votes.unannounced()) this.track(this.announce(ballot));
  }

  /** Stops the timers and waits for closings in progress. */
  async stop(): Promise<void> {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await Promise.allSettled([...this.closing]);
  }

  /** A result was posted: a contest opens its vote now; an arena match opens once both sides are posted. */
  resultPosted(job: Job): void {
    const ms = job.request.contestMs;
    if (ms === undefined) return;
    const now = this.now();
    if (job.request.arena) {
      const match = this.services.votes.match(job.request.arena.matchId);
      if (!match) return;
      // The vote opens when both sides are posted (the relay marks each delivered before calling this).
      const other = this.services.jobs.get(job.id === match.jobA ? match.jobB : match.jobA);
      if (other?.state !== "delivered") return;
      this.services.votes.setDeadline(match.id, now + ms);
    } else {
      // A vote pressed before this point opened a plain result ballot: the deadline makes it the contest.
      this.services.votes.openBallot(resultBallot(job, "contest", now, now + ms));
      this.services.votes.setDeadline(job.id, now + ms);
    }
    const ballot = this.services.votes.ballot(job.request.arena?.matchId ?? job.id);
    if (ballot) this.schedule(ballot);
  }

  /** Keeps a closing in flight for stop(); its errors are logged, never left unhandled. */
  private track(p: Promise<void>): void {
    const tracked = p
      .catch((err: unknown) => this.log(`easel: closing a vote failed: ${describeError(err)}`))
      .finally(() => this.closing.delete(tracked));
    this.closing.add(tracked);
  }

  private schedule(ballot: Ballot): void {
    if (ballot.closesAt === undefined || this.timers.has(ballot.id)) return;
    const wait = Math.max(0, ballot.closesAt - this.now());
    this.timers.set(
      ballot.id,
      setTimeout(() => {
        this.timers.delete(ballot.id);
        this.track(this.close(ballot.id));
      }, wait),
    );
  }

  /** Closes a ballot (once, whoever gets there first) and announces it. */
  async close(ballotId: string): Promise<void> {
    const tally = this.services.votes.tally(ballotId);
    const winner = winnerOf(tally);
    if (!this.services.votes.close(ballotId, this.now(), "deadline", winner)) return;
    const ballot = this.services.votes.ballot(ballotId);
    if (ballot) await this.announce(ballot);
  }

  private async announce(ballot: Ballot, attempt = 0): Promise<void> {
    const announcer = this.announcers.get(ballot.platform);
    if (!announcer) return;
    try {
      const tally = this.services.votes.tally(ballot.id);
      if (ballot.kind === "arena") {
        const match = this.services.votes.match(ballot.id);
        if (!match) return;
        const votes: [number, number] = [tally.counts[0] ?? 0, tally.counts[1] ?? 0];
        const scoreA =
          ballot.winner === undefined ? undefined : votes[0] === votes[1] ? 0.5 : ballot.winner === 1 ? 1 : 0;
        const before = [this.services.votes.rating(match.modelA), this.services.votes.rating(match.modelB)];
        const after = this.services.votes.rateMatch(match.id, votes, this.options.elo, scoreA) ?? [
          this.services.votes.rating(match.modelA),
          this.services.votes.rating(match.modelB),
        ];
        const model = presentArenaReveal(match, ballot, votes, before, after, this.options.elo.start);
        await this.announceOnce(announcer, ballot, model, [], match.jobA);
        return;
      }
      const job = this.services.jobs.get(ballot.id);
      if (!job) return;
      const images = await this.services.jobs.images(job.id);
      const image = images.find((i) => i.variant === ballot.winner);
      const files = image
        ? [await imageFile(this.services.jobs, image, winnerFileName(job.id, image.variant))]
        : [];
      await this.announceOnce(announcer, ballot, presentContestResult(job, ballot, tally), files, job.id);
      if (
        image &&
        this.services.settings.guild(ballot.platform, ballot.workspaceId).contestUpscale === true
      ) {
        await this.upscaleWinner(job, ballot);
      }
    } catch (err) {
      const delay = this.retryDelaysMs[attempt];
      this.log(
        `easel: could not announce the end of vote ${ballot.id}: ${describeError(err)}${
          delay === undefined
            ? "; it is posted at the next start"
            : `; trying again in ${Math.round(delay / 1000)} s`
        }`,
      );
      if (delay !== undefined) {
        const key = `announce:${ballot.id}`;
        this.timers.set(
          key,
          setTimeout(() => {
            this.timers.delete(key);
            this.track(this.announce(ballot, attempt + 1));
          }, delay),
        );
      }
    }
  }

  /**
   * One side of an arena match failed or was cancelled: the match is called off (no rating) and the channel
   * is told, instead of a vote that would never close.
   */
  async sideEnded(job: Job): Promise<void> {
    const arena = job.request.arena;
    if (!arena) return;
    if (!this.services.votes.close(arena.matchId, this.now(), "deleted", undefined)) return;
    const ballot = this.services.votes.ballot(arena.matchId);
    const announcer = ballot ? this.announcers.get(ballot.platform) : undefined;
    if (!ballot || !announcer) return;
    await this.announceOnce(announcer, ballot, presentArenaCalledOff(job), [], job.id).catch(
      (err: unknown) => {
        this.log(`easel: could not post that match ${ballot.id} was called off: ${describeError(err)}`);
      },
    );
  }

  /** Announces unless an announcement is recorded as posted for `recordAs` already (a retry, a restart). */
  private async announceOnce(
    announcer: Announcer,
    ballot: Ballot,
    model: MessageModel,
    files: OutgoingFile[],
    recordAs: string,
  ): Promise<void> {
    if (latestPosted(this.services.deliveries, recordAs, "announcement")) return;
    await announcer.announce(ballot, model, files, recordAs);
  }

  /** The guild wants winners upscaled: the U button's job, pressed for the owner (one per contest). */
  private async upscaleWinner(job: Job, ballot: Ballot): Promise<void> {
    if (ballot.winner === undefined) return;
    const owner: Actor = {
      requester: job.request.requester,
      platformAdmin: false,
      memberRoleIds: [],
      channelNsfw: job.request.nsfwAllowed === true,
      isBot: false,
    };
    const outcome = await pressButton(
      this.services,
      owner,
      `contest-upscale:${ballot.id}`,
      encodeButtonId({ action: "upscale", jobId: job.id, variant: ballot.winner }),
    );
    if (outcome.kind === "upscale" && !outcome.upscale.ok)
      this.log(`easel: contest upscale: ${outcome.upscale.message}`);
  }
}

/** One side of `/compare`: "backend:model", a model name, or a backend name (its default model). */
function resolveContender(
  services: BotServices,
  spec: string,
): { backend: BackendName; model: string } | undefined {
  const catalog = services.requestContext.catalog;
  const [first, second] = spec.trim().split(":");
  if (second !== undefined) {
    const backend = first as BackendName;
    return catalog[backend]?.includes(second) ? { backend, model: second } : undefined;
  }
  for (const backend of Object.keys(catalog) as BackendName[]) {
    if (first === backend) {
      const model = services.requestContext.defaults?.models[backend] ?? catalog[backend]?.[0];
      return model ? { backend, model } : undefined;
    }
    if (first && catalog[backend]?.includes(first)) return { backend, model: first };
  }
  return undefined;
}

/** Every model the bot can render with, the default ones first, different backends first. */
function contenders(services: BotServices): { backend: BackendName; model: string }[] {
  const { catalog, defaults } = services.requestContext;
  const out: { backend: BackendName; model: string }[] = [];
  const add = (backend: BackendName, model: string | undefined) => {
    if (
      model &&
      catalog[backend]?.includes(model) &&
      !out.some((c) => c.backend === backend && c.model === model)
    ) {
      out.push({ backend, model });
    }
  };
  for (const backend of Object.keys(catalog) as BackendName[])
    add(backend, defaults?.models[backend] ?? catalog[backend]?.[0]);
  for (const backend of Object.keys(catalog) as BackendName[])
    for (const model of catalog[backend] ?? []) add(backend, model);
  return out;
}

/** A started arena match, or why not. */
export type ArenaOutcome =
  | { ok: true; matchId: string; sides: [ImagineOutcome & { ok: true }, ImagineOutcome & { ok: true }] }
  | { ok: false; message: string };

/**
 * `/compare prompt [a] [b]`: the same prompt and seed on two models (by default the default local model and
 * the OpenAI model, or two local models), assigned to A and B at random, voted on blind.
 */
export function startArena(
  services: BotServices,
  actor: Actor,
  eventId: string,
  input: { prompt: string; a?: string; b?: string; durationMs?: number },
  random: () => number = Math.random,
): ArenaOutcome {
  if (actor.isBot) return { ok: false, message: BOT_MESSAGES.botsMayNot };
  const all = contenders(services);
  const pick = (spec: string | undefined, not?: { backend: string; model: string }) => {
    if (spec) return resolveContender(services, spec);
    return all.find((c) => !not || c.backend !== not.backend || c.model !== not.model);
  };
  const first = pick(input.a);
  if (input.a && !first)
    return { ok: false, message: BOT_MESSAGES.unknownContender(input.a, all.map(label)) };
  const second = pick(input.b, first);
  if (input.b && !second)
    return { ok: false, message: BOT_MESSAGES.unknownContender(input.b, all.map(label)) };
  if (!first || !second || label(first) === label(second))
    return { ok: false, message: BOT_MESSAGES.arenaNeedsTwo };
  const [a, b] = random() < 0.5 ? [first, second] : [second, first];
  // The id follows the platform event, so a redelivered /compare finds its match instead of opening another.
  const matchId = `a${createHash("sha256").update(eventId).digest("hex").slice(0, 11)}`;
  const existing = services.votes.match(matchId);
  if (existing) {
    const jobA = services.jobs.get(existing.jobA);
    const jobB = services.jobs.get(existing.jobB);
    if (!jobA || !jobB) return { ok: false, message: BOT_MESSAGES.jobGone };
    const again = (job: Job) => ({
      ok: true as const,
      job,
      position: 0,
      etaMs: 0,
      notes: [],
      duplicate: true,
    });
    return { ok: true, matchId, sides: [again(jobA), again(jobB)] };
  }
  const me = actor.requester;
  const guild = services.settings.guild(me.platform, me.workspaceId);
  const durationMs = input.durationMs ?? (guild.contestMinutes ?? DEFAULT_CONTEST_MINUTES) * 60_000;
  const seed = randomSeed(random);
  const side = (c: { backend: BackendName; model: string }, name: "A" | "B") =>
    imagine(services, actor, `${eventId}:${name}`, {
      prompt: input.prompt,
      options: { backend: c.backend, model: c.model, seed, count: 1 },
      arena: { matchId, side: name },
      contestMs: durationMs,
    });
  const now = Date.now();
  services.votes.openBallot({
    id: matchId,
    kind: "arena",
    platform: me.platform,
    workspaceId: me.workspaceId,
    channelId: me.channelId,
    ownerId: "",
    choices: 2,
    createdAt: now,
  });
  const sideA = side(a, "A");
  if (!sideA.ok) {
    services.votes.close(matchId, now, "deleted", undefined);
    return sideA;
  }
  const sideB = side(b, "B");
  if (!sideB.ok) {
    services.engine.cancel(sideA.job.id);
    services.votes.close(matchId, now, "deleted", undefined);
    return sideB;
  }
  services.votes.recordMatch({
    id: matchId,
    prompt: input.prompt,
    jobA: sideA.job.id,
    jobB: sideB.job.id,
    modelA: label(a),
    modelB: label(b),
  });
  return { ok: true, matchId, sides: [sideA, sideB] };
}

const label = (c: { backend: string; model: string }) => `${c.backend}:${c.model}`;

const describeError = (err: unknown): string => (err instanceof Error ? err.message : String(err));

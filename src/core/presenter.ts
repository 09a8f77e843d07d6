import { describeSize } from "./aspect.ts";
import type { BackendProgress } from "./backend.ts";
import { encodeButtonId } from "./buttons.ts";
import type { StoredImage } from "./engine.ts";
import { resultFileName } from "./image-files.ts";
import type { Job } from "./job.ts";
import { BOT_MESSAGES, CARD_TEXT, MESSAGES } from "./messages.ts";
import { renderCanonicalPrompt } from "./prompt-flags.ts";
import type { ArenaMatch, Ballot, ModelRating, Tally } from "./voting.ts";

/**
 * Engine events → a neutral message model (text, fields, images, buttons) that the Discord and Slack adapters
 * lay out as an embed with components or as Block Kit. Every limit that both platforms share is applied here.
 */

export interface MessageField {
  name: string;
  value: string;
  inline: boolean;
}

export interface MessageButton {
  id: string;
  label: string;
  style: "primary" | "secondary" | "danger" | "success";
}

export interface MessageModel {
  /** The plain line above the card (mentions go here). */
  content: string;
  title: string;
  description?: string;
  fields: MessageField[];
  /** Images to attach; the first is shown large (the grid of a multi-image job). */
  images: { imageId: string; filename: string }[];
  /** A small progress image (RGB preview), shown while rendering. */
  preview?: BackendProgress["preview"];
  /** Rows of at most 5 buttons, at most 5 rows. */
  buttons: MessageButton[][];
  footer?: string;
  tone: "info" | "success" | "error";
}

/** Discord's field value limit, the tighter of the two platforms. */
const FIELD_MAX = 1024;
const TITLE_MAX = 256;

/** Cuts text to `max` characters (code points), ending in an ellipsis when cut. */
export function cut(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join("")}…`;
}

/**
 * Text a member typed (prompts), made inert: `<@U…>`, `<#C…>` and `<!channel>` would mention (and on Slack
 * notify) whoever they name, so a zero-width space goes after the `<`; they show as typed.
 */
export function memberText(text: string): string {
  return text.replace(/<(?=[@#!])/g, "<\u200b");
}

/** `<@user>` mentions the requester on both Discord and Slack. */
const mention = (job: Job) => `<@${job.request.requester.userId}>`;

function promptTitle(job: Job): string {
  return cut(memberText(job.request.prompt) || CARD_TEXT.emptyPrompt, TITLE_MAX);
}

function cancelRow(job: Job): MessageButton[][] {
  return [
    [
      {
        id: encodeButtonId({ action: "cancel", jobId: job.id }),
        label: CARD_TEXT.buttons.cancel,
        style: "danger",
      },
    ],
  ];
}

/** Waiting in line. */
export function presentQueued(job: Job, position: number, etaMs: number, retry: boolean): MessageModel {
  return {
    content: retry ? MESSAGES.retrying(position) : MESSAGES.queued(position, etaMs),
    title: promptTitle(job),
    fields: [],
    images: [],
    buttons: cancelRow(job),
    tone: "info",
  };
}

/** Rendering, with the step and (when there is one) a preview. */
export function presentRunning(job: Job, progress?: BackendProgress): MessageModel {
  return {
    content: progress ? MESSAGES.running(progress.step, progress.total) : MESSAGES.starting,
    title: promptTitle(job),
    fields: [],
    images: [],
    ...(progress?.preview ? { preview: progress.preview } : {}),
    buttons: cancelRow(job),
    tone: "info",
  };
}

/** The finished result: images, every setting, the prompt to copy, and the buttons. */
export function presentDone(
  job: Job,
  images: readonly StoredImage[],
  notes: readonly string[],
  renderMs: number,
  tally?: Tally,
): MessageModel {
  const r = job.request;
  if (r.arena) return presentArenaSide(job, images);
  const all = images.filter((i) => i.variant > 0).sort((a, b) => a.variant - b.variant);
  // What the safety checker flagged is never posted, voted for, varied or upscaled; the grid shows it black.
  const pictures = all.filter((i) => !i.flagged);
  const withheld = all.filter((i) => i.flagged).map((i) => i.variant);
  const grid = pictures.length > 0 ? images.find((i) => i.variant === 0) : undefined;
  const seeds = all.map((i) => (i.seed === null ? CARD_TEXT.notApplicable : String(i.seed)));
  const names = CARD_TEXT.fields;
  const fields: MessageField[] = [
    {
      name: names.seed,
      value:
        seeds.length > 1
          ? seeds.map((s, i) => `${i + 1}: ${s}`).join(" · ")
          : (seeds[0] ?? CARD_TEXT.notApplicable),
      inline: true,
    },
    { name: names.steps, value: String(r.steps), inline: true },
    { name: names.cfg, value: String(r.guidance), inline: true },
    { name: names.sampler, value: r.sampler, inline: true },
    {
      name: names.size,
      // The real size and its real ratio: an --ar may have been met only approximately.
      value: describeSize(all[0]?.width ?? r.width, all[0]?.height ?? r.height),
      inline: true,
    },
    { name: names.model, value: `${r.model} (${r.backend})`, inline: true },
    { name: names.requestedBy, value: mention(job), inline: true },
  ];
  if (r.negativePrompt)
    fields.unshift({
      name: names.negativePrompt,
      value: cut(memberText(r.negativePrompt), FIELD_MAX),
      inline: false,
    });
  fields.push({
    name: names.promptToRerun,
    value: cut(`\`${memberText(renderCanonicalPrompt(r))}\``, FIELD_MAX),
    inline: false,
  });
  if (notes.length > 0)
    fields.push({ name: names.notes, value: cut(notes.join("\n"), FIELD_MAX), inline: false });
  if (withheld.length > 0)
    fields.push({ name: names.withheld, value: CARD_TEXT.withheld(withheld), inline: false });

  const buttons: MessageButton[][] = [];
  const indexes = pictures.map((p) => p.variant);
  if (indexes.length > 0) {
    buttons.push(
      indexes.map((n) => ({
        id: encodeButtonId({ action: "upscale", jobId: job.id, variant: n }),
        label: CARD_TEXT.buttons.upscale(n),
        style: "secondary" as const,
      })),
    );
    buttons.push(
      indexes.map((n) => ({
        id: encodeButtonId({ action: "variation", jobId: job.id, variant: n }),
        label: CARD_TEXT.buttons.variation(n),
        style: "secondary" as const,
      })),
    );
  }
  if (indexes.length > 1) buttons.push(voteRow(job.id, indexes.map(String), tally, indexes));
  const last: MessageButton[] = [
    {
      id: encodeButtonId({ action: "reroll", jobId: job.id }),
      label: CARD_TEXT.buttons.reroll,
      style: "primary",
    },
  ];
  if (r.backend === "ldm")
    last.push({
      id: encodeButtonId({ action: "howItWasMade", jobId: job.id }),
      label: CARD_TEXT.buttons.howItWasMade,
      style: "secondary",
    });
  last.push({
    id: encodeButtonId({ action: "delete", jobId: job.id }),
    label: CARD_TEXT.buttons.delete,
    style: "danger",
  });
  buttons.push(last);

  const attach = [...(grid ? [grid] : []), ...pictures].map((i) => ({
    imageId: i.id,
    filename: resultFileName(job.id, i.variant),
  }));
  const contestMs = pictures.length > 1 ? r.contestMs : undefined;
  return {
    content:
      pictures.length === 0
        ? CARD_TEXT.allWithheld(mention(job), all.length)
        : CARD_TEXT.ready(mention(job), pictures.length, contestMs),
    title: promptTitle(job),
    fields,
    images: attach,
    buttons,
    footer: CARD_TEXT.renderedFooter(job.id, renderMs),
    tone: "success",
  };
}

/** U: one image of a result alone, at full size, for the member who pressed it. */
export function presentFullSize(job: Job, image: StoredImage, presserId: string): MessageModel {
  return {
    content: `<@${presserId}> ${BOT_MESSAGES.imageAtFullSize(image.variant)}`,
    title: promptTitle(job),
    fields: [],
    images: [{ imageId: image.id, filename: resultFileName(job.id, image.variant) }],
    buttons: [],
    footer: CARD_TEXT.sizeFooter(job.id, image.width, image.height),
    tone: "success",
  };
}

/** Vote buttons for `choices` (labels "1".."4" or "A"/"B"), with their counts when a tally is given. */
export function voteRow(
  ballotId: string,
  choices: readonly string[],
  tally?: Tally,
  /** The choice each button casts (default 1, 2, …): a result's image numbers, which skip withheld ones. */
  variants: readonly number[] = choices.map((_, i) => i + 1),
): MessageButton[] {
  return choices.map((name, i) => {
    const variant = variants[i] ?? i + 1;
    const n = tally ? (tally.counts[variant - 1] ?? 0) : undefined;
    return {
      id: encodeButtonId({ action: "vote", jobId: ballotId, variant }),
      label: CARD_TEXT.buttons.vote(name, n),
      style: "success" as const,
    };
  });
}

/** One side of an arena match: the image only, blind (no model, backend, seed or settings) until the reveal. */
function presentArenaSide(job: Job, images: readonly StoredImage[]): MessageModel {
  const side = job.request.arena?.side ?? "A";
  const image = images.find((i) => i.variant === 1) ?? images[0];
  return {
    content: CARD_TEXT.arenaSide(side),
    title: `${side}: ${promptTitle(job)}`.slice(0, TITLE_MAX),
    fields: [],
    images: image ? [{ imageId: image.id, filename: `arena-${side.toLowerCase()}.png` }] : [],
    buttons: [voteRow(job.request.arena?.matchId ?? job.id, ["A", "B"])],
    footer: CARD_TEXT.arenaSideFooter,
    tone: "success",
  };
}

/** A contest's close: the winner (with its image), or that nobody voted; the tie rule stated. */
export function presentContestResult(job: Job, ballot: Ballot, tally: Tally): MessageModel {
  const counts = tally.counts.map((n, i) => `${i + 1}: ${n}`).join(" · ");
  const won = ballot.winner;
  const content =
    won === undefined
      ? CARD_TEXT.contestNoVotes(mention(job))
      : CARD_TEXT.contestWinner(won, mention(job), tally.counts[won - 1] ?? 0, tally.total);
  return {
    content,
    title: promptTitle(job),
    fields: [
      { name: CARD_TEXT.fields.votes, value: counts || CARD_TEXT.noVotes, inline: false },
      { name: CARD_TEXT.fields.tieRule, value: CARD_TEXT.tieRule, inline: false },
    ],
    images: [],
    buttons: [],
    footer: CARD_TEXT.jobFooter(job.id),
    tone: "success",
  };
}

/** An arena match's reveal: which model was A and B, the votes, and the ratings before → after. */
export function presentArenaReveal(
  match: ArenaMatch,
  ballot: Ballot,
  votes: [number, number],
  before: (ModelRating | undefined)[],
  after: (ModelRating | undefined)[],
  start: number,
): MessageModel {
  const contender = (i: 0 | 1, model: string) => {
    const b = Math.round(before[i]?.rating ?? start);
    const a = Math.round(after[i]?.rating ?? start);
    return CARD_TEXT.arenaContender(model, votes[i], a, a - b);
  };
  const outcome =
    ballot.winner === undefined
      ? CARD_TEXT.arenaNobodyVoted
      : votes[0] === votes[1]
        ? CARD_TEXT.arenaDraw(votes[0], votes[1])
        : CARD_TEXT.arenaWin(ballot.winner === 1 ? "A" : "B", Math.max(...votes), Math.min(...votes));
  return {
    content: CARD_TEXT.arenaRevealed(outcome),
    title: cut(memberText(match.prompt) || CARD_TEXT.emptyPrompt, TITLE_MAX),
    fields: [
      { name: "A", value: contender(0, match.modelA), inline: false },
      { name: "B", value: contender(1, match.modelB), inline: false },
    ],
    images: [],
    buttons: [],
    footer: CARD_TEXT.matchFooter(match.id),
    tone: "success",
  };
}

/** An arena match that cannot be judged: one side could not be drawn. */
export function presentArenaCalledOff(job: Job): MessageModel {
  return {
    content: CARD_TEXT.arenaCalledOff(job.request.arena?.side ?? "?"),
    title: promptTitle(job),
    fields: [],
    images: [],
    buttons: [],
    tone: "error",
  };
}

/** A job that failed, with the reason the member can act on. */
export function presentFailed(job: Job, message: string): MessageModel {
  return {
    content: `${mention(job)} ${message}`,
    title: promptTitle(job),
    fields: [
      {
        name: CARD_TEXT.fields.promptToRerun,
        value: cut(`\`${memberText(renderCanonicalPrompt(job.request))}\``, FIELD_MAX),
        inline: false,
      },
    ],
    images: [],
    buttons: [
      [
        {
          id: encodeButtonId({ action: "reroll", jobId: job.id }),
          label: CARD_TEXT.buttons.tryAgain,
          style: "primary",
        },
      ],
    ],
    footer: CARD_TEXT.jobFooter(job.id),
    tone: "error",
  };
}

/** A cancelled job. */
export function presentCancelled(job: Job): MessageModel {
  return {
    content: MESSAGES.cancelled,
    title: promptTitle(job),
    fields: [],
    images: [],
    buttons: [],
    tone: "info",
  };
}

import { FLAG_NAMES } from "./prompt-flags.ts";

/**
 * Every sentence easel shows to members, in one place, so the voice stays the same on Discord and Slack and a
 * translation has one file to change. Platforms only lay these out.
 */

/** "about 2 min", "about 40 s", "under a second". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return "under a second";
  const s = Math.round(ms / 1000);
  if (s < 60) return `about ${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `about ${m} min`;
  return `about ${Math.round(m / 6) / 10} h`;
}

/** A count with its noun in the right number: "1 step", "2 steps"; `many` for irregular plurals. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

export const MESSAGES = {
  queued: (position: number, etaMs: number) =>
    position <= 1
      ? `Queued: next up · ETA ${formatDuration(etaMs)}`
      : `Queued #${position} · ETA ${formatDuration(etaMs)}`,
  /** The private answer to a queued job: place, ETA and what was adjusted. */
  queuedWithNotes: (job: { position: number; etaMs: number; notes: readonly string[] }) =>
    [MESSAGES.queued(job.position, job.etaMs), ...job.notes].join("\n"),
  retrying: (position: number) => `The renderer hiccuped; trying again (queued #${position}).`,
  running: (step: number, total: number) => `Rendering… step ${step}/${total}`,
  starting: "Starting…",
  cancelled: "Cancelled.",
  shuttingDown: "easel is restarting; please try again in a minute.",
  queueFull: (max: number) => `The queue is full (${plural(max, "job")}). Please try again in a few minutes.`,
  userLimit: (max: number) =>
    `You already have ${plural(max, "job")} waiting or rendering (the limit); wait for one to finish.`,
  workspaceLimit: (max: number) =>
    `This server already has ${plural(max, "job")} waiting (its limit); please try again soon.`,
  backendUnavailable: (backend: string) => `The ${backend} renderer is not configured on this bot.`,
  timedOut: (ms: number) =>
    `Rendering took longer than ${formatDuration(ms).replace("about ", "")}; it was stopped.`,
  interruptedOutOfRetries: "The renderer stopped while working on this several times; giving up on it.",
  failedGeneric: "Something went wrong while rendering. The operator can find details in the logs.",
  contentPolicy: "Rejected by the provider's safety system. Try rewording the prompt.",
  arenaCalledOff: (side: string) =>
    `The arena match is called off: side ${side} could not be drawn, so there is nothing to compare (no rating changes).`,
  /** The image API answered 429 after the SDK's own retries (`attempts` requests in all). */
  providerRateLimited: (attempts: number) =>
    `The image service is rate-limiting this bot right now${attempts > 1 ? ` (tried ${attempts} times)` : ""}.`,
  /** A daily cap on OpenAI images would be passed; names the cap, whose it is, and when it resets. */
  openAiDailyLimit: (limit: OpenAiDailyLimit) => openAiDailyLimitText(limit),
  /** Guild settings: a cap override that is not a whole number from 0 to `max`. */
  openAiCapNotWhole: (setting: string, value: unknown, max: number) =>
    `${setting} must be a whole number of images from 0 to ${max} (got ${String(value)})`,
  /** Guild settings: a cap override above the operator's cap (a guild may only lower it). */
  openAiCapAboveOperator: (setting: string, value: number, cap: number, variable: string) =>
    `${setting} can only lower the operator's daily limit of ${plural(cap, "OpenAI image")} (${variable}); got ${value}`,
} as const;

/** Which daily cap a request would pass, for {@link MESSAGES.openAiDailyLimit}. */
export interface OpenAiDailyLimit {
  /** The cap per member, or the one for the whole server (workspace). */
  scope: "member" | "server";
  /** The operator's configuration, or this server's admins (a lower override; 0 turns OpenAI off). */
  setBy: "operator" | "guild";
  cap: number;
  /** Images already counted today (made, or held by running jobs). */
  used: number;
  /** Images this job asks for. */
  asked: number;
}

function openAiDailyLimitText({ scope, setBy, cap, used, asked }: OpenAiDailyLimit): string {
  const member = scope === "member";
  if (cap === 0)
    return `OpenAI images are turned off on this server: its admins set ${
      member ? "the daily limit per member" : "the server's daily limit"
    } to 0. Try another backend, or ask an admin.`;
  const limit = member
    ? setBy === "operator"
      ? "the daily limit per member"
      : "this server's daily limit per member"
    : setBy === "operator"
      ? "this server's daily limit"
      : "the daily limit this server's admins set";
  const subject = member ? "You have" : "This server has";
  const left = Math.max(0, cap - used);
  if (left === 0)
    return `${subject} used ${cap === 1 ? "the 1 OpenAI image" : `all ${cap} OpenAI images`} for today (${limit}); it resets at 00:00 UTC.`;
  return `${subject} ${plural(left, "OpenAI image")} left today of ${cap} (${limit}); this job asks for ${asked}. Ask for fewer images, or wait until 00:00 UTC.`;
}

/** What the chat bot says about commands and buttons (both platforms). */
export const BOT_MESSAGES = {
  botsMayNot: "Bots and apps cannot use easel's commands or buttons.",
  jobGone: "That job is no longer in easel's records.",
  imageGone: "That image is no longer in easel's records.",
  /** A press on an image the model's safety checker withheld (U, V, a vote). */
  imageWithheld: (variant: number) =>
    `Image ${variant} was withheld: the model's safety checker flagged it, so it cannot be shown, varied, upscaled or voted for.`,
  onlyOwnerOrAdmin: (action: string) =>
    `Only the member who asked for this image, or an admin, may ${action} it.`,
  notYourButtons:
    "On this server only the member who asked for an image (or an admin) may reroll, vary or upscale it.",
  cancelRequested: "Cancelling…",
  upscaleQueued: "Upscaling 2×…",
  alreadyFinished: "That job has already finished.",
  upscaleNeedsLdm:
    "Upscaling runs a low-strength pass of the local model, and no local model is installed on this bot; here is the image at full size.",
  adminsOnly: (what: string) =>
    `Only easel admins may ${what} (server admins, the admin roles, or EASEL_ADMIN_IDS).`,
  deliveredInChannel: "(The original reply had expired, so easel posted this as a new message.)",
  attachmentScaled: (limitBytes: number) =>
    `The full-size PNG was over this channel's upload limit of ${Math.floor(limitBytes / 1024 / 1024)} MiB, so it was re-encoded smaller.`,
  unknownCommand: (name: string) => `easel does not know the command "${name}".`,
  botsMayNotVote: "Bots and apps cannot vote.",
  voteOnDeleted: "That result was deleted; its vote is over.",
  votingClosed: "Voting closed.",
  noSelfVote: "On this server you cannot vote on your own images (an admin can change that: `self-vote`).",
  voted: (change: "added" | "moved" | "removed" | "unchanged", choice: string) =>
    change === "removed"
      ? `Your vote for ${choice} is taken back.`
      : change === "moved"
        ? `Your vote moved to ${choice}.`
        : `Your vote for ${choice} counts.`,
  /** What a vote is for, as {@link BOT_MESSAGES.voted} names it: an arena side, or one of the images. */
  voteChoice: (arena: boolean, choice: number) => (arena ? (choice === 1 ? "A" : "B") : `image ${choice}`),
  arenaNeedsTwo:
    "The arena needs two different models, and this bot has only one (add a model folder or an OpenAI key).",
  unknownContender: (spec: string, known: readonly string[]) =>
    `There is no model "${spec}" here. Models: ${known.join(", ")}`,
  arenaStarted: (minutes: number) =>
    `Arena: the same prompt on two models, shown as A and B. Vote for the better one; the models are revealed ${minutes} min after both are in.`,
  nothingVotedYet: "No votes yet.",
  nothingQueued: "You have no jobs waiting or rendering.",
  noJobsAtAll: "Nothing is waiting or rendering.",
  cancelUsage: "Give the id of the job to cancel (shown under its message), e.g. `cancel k3x9a2`.",
  notInChannel:
    "easel is not in this channel, so it cannot post your image here. Invite it with `/invite @easel` (or the channel's Integrations menu) and try again.",
  commandFailed: "Something went wrong with that command. The operator can find details in the logs.",
  /** A result easel rendered but could never post; `why` is one of the delivery reasons below. */
  undeliverable: (channel: string, jobId: string, why: string) =>
    `easel drew your image (job ${jobId}) but could not post it in ${channel}: ${why} It is kept; ask an admin, or try again once that is fixed.`,
  deliveryNotInChannel: "easel is no longer a member of that channel.",
  deliveryChannelGone: "that channel no longer exists (or easel can no longer see it).",
  deliveryNoAccess: "easel lost its permission to post there.",
  deliveryArchived: "that channel is archived.",
  deliveryBotRemoved: "easel was removed from that workspace or server.",
  /** Transient errors until the machine gave up (out of attempts or of time). */
  deliveryKeptFailing: (attempts: number) =>
    `the platform kept refusing the post (${plural(attempts, "attempt")}).`,
  /** The image of a U button, posted alone. */
  imageAtFullSize: (variant: number) => `image ${variant} at full size`,
  /** Slack: `/imagine help`; `lines` are the sub-commands as typed after the slash command. */
  slackHelp: (command: string, lines: readonly { usage: string; description: string }[]) =>
    [
      `*easel* draws what you describe: \`${command} a lighthouse in a storm --ar 3:2 --seed 42\`.`,
      `Flags in the prompt: ${FLAG_NAMES.map((f) => `--${f}`).join(", ")}.`,
      ...lines.map((l) => `• \`${l.usage}\` — ${l.description}`),
      `A message's "Imagine this" shortcut (its ⋯ menu) draws that message's text.`,
    ].join("\n"),
} as const;

/**
 * What the `nsfw` setting really changes, said wherever it is shown or set: until a model's safety checker
 * runs, local models are not filtered at all.
 */
export const NSFW_SCOPE_NOTE =
  "nsfw on (in an age-restricted channel) relaxes OpenAI's moderation and turns off local models' safety checker. With nsfw off, a local image the model's safety checker flags is withheld; local models without a checker (none of their own, no EASEL_SAFETY_CHECKER) are unfiltered in every channel.";

/** The words on easel's cards (core/presenter.ts): field names, button labels, and the lines around them. */
export const CARD_TEXT = {
  emptyPrompt: "(empty prompt)",
  notApplicable: "n/a",
  fields: {
    seed: "Seed",
    steps: "Steps",
    cfg: "CFG",
    sampler: "Sampler",
    size: "Size",
    model: "Model",
    requestedBy: "Requested by",
    negativePrompt: "Negative prompt",
    promptToRerun: "Prompt to rerun",
    notes: "Notes",
    withheld: "Withheld",
    /** Discord: what the platform changed about the result (an upload re-encoded smaller). */
    note: "Note",
    votes: "Votes",
    tieRule: "Tie rule",
  },
  buttons: {
    cancel: "❌ Cancel",
    reroll: "🔁 Reroll",
    tryAgain: "🔁 Try again",
    howItWasMade: "🎞 How it was made",
    delete: "🗑 Delete",
    upscale: (n: number) => `U${n}`,
    variation: (n: number) => `V${n}`,
    /** A vote button, with its count once there is a tally. */
    vote: (choice: string, count?: number) =>
      count === undefined ? `🗳 ${choice}` : `🗳 ${choice} · ${count}`,
  },
  /** The line above a result; `contestMs` when its variants are put to a vote. */
  /** The Withheld field: which images the model's safety checker flagged (their grid cells are black). */
  withheld: (variants: readonly number[]) =>
    `${variants.length === 1 ? "Image" : "Images"} ${variants.join(", ")}: flagged by the model's safety checker, not shown (black in the grid).`,
  /** A result whose every image was withheld. */
  allWithheld: (mention: string, images: number) =>
    `${mention} ${images === 1 ? "your image was" : `all ${images} images were`} withheld: the model's safety checker flagged ${images === 1 ? "it" : "them"}.`,
  ready: (mention: string, images: number, contestMs?: number) =>
    `${mention} your image${images > 1 ? "s are" : " is"} ready${
      contestMs === undefined
        ? ""
        : ` · 🗳 vote for your favourite: voting closes ${formatDuration(contestMs).replace("about ", "in ")} after posting`
    }`,
  renderedFooter: (jobId: string, renderMs: number) => `Job ${jobId} · ${formatDuration(renderMs)} to render`,
  jobFooter: (jobId: string) => `Job ${jobId}`,
  /** U: the image posted alone. */
  sizeFooter: (jobId: string, width: number, height: number) => `Job ${jobId} · ${width}×${height}`,
  arenaSide: (side: string) => `Arena · ${side}`,
  arenaSideFooter: "The models are revealed when the vote closes.",
  contestNoVotes: (mention: string) => `🗳 The vote on ${mention}'s images closed with no votes.`,
  contestWinner: (variant: number, mention: string, votes: number, total: number) =>
    `🏆 Image ${variant} of ${mention} wins with ${votes} of ${plural(total, "vote")}.`,
  noVotes: "none",
  tieRule: "A tie goes to the image that reached its final count first.",
  arenaRevealed: (outcome: string) => `⚔️ Arena revealed: ${outcome}`,
  arenaNobodyVoted: "Nobody voted: no rating changes.",
  arenaDraw: (a: number, b: number) => `A draw, ${a}–${b}.`,
  arenaWin: (side: string, most: number, least: number) => `${side} wins, ${most}–${least}.`,
  /** One model's line in the reveal: its votes and its rating after (and the change). */
  arenaContender: (model: string, votes: number, rating: number, change: number) =>
    `${model} · ${plural(votes, "vote")} · Elo ${rating} (${change >= 0 ? "+" : "−"}${Math.abs(change)})`,
  matchFooter: (matchId: string) => `Match ${matchId}`,
  arenaCalledOff: (side: string) => `⚔️ ${MESSAGES.arenaCalledOff(side)}`,
} as const;

/** "How it was made" (core/explain.ts), told with the job's own numbers. */
export const EXPLAIN_TEXT = {
  heading: (jobId: string) => `**How it was made** (job ${jobId})`,
  remoteSent: (model: string) => `1. Prompt → sent to ${model} through the OpenAI images API.`,
  remoteDrawn: "2. The provider's model drew it; it does not say how (no seed, no steps).",
  prompt: (prompt: string) => `1. Prompt: "${prompt}"`,
  tokens: (tokens: number, cut: number) =>
    `2. → ${plural(tokens, "CLIP token")}${cut > 0 ? ` (${cut} over the limit of 77 ${cut === 1 ? "was" : "were"} cut)` : ""}`,
  tokensUnknown: "2. → CLIP tokens (at most 77)",
  encoder: (negative: boolean, encoders = 1) =>
    encoders === 2
      ? `3. → two text encoders (SDXL's CLIP-L and OpenCLIP bigG) each turn them into one vector per token, joined side by side, plus one pooled vector for the whole prompt${negative ? "; the negative prompt gets the same" : ""}.`
      : `3. → the text encoder turns them into one embedding vector per token${negative ? ", and the negative prompt into another" : ""}.`,
  img2img: (latent: string, percent: number, steps: number, of: number, sampler: string, cfg: number) =>
    `4. → the start image is encoded to a ${latent} latent and noised to ${percent} %, then ${steps} of ${plural(of, `${sampler} step`)} remove${steps === 1 ? "s" : ""} the noise, guided by the prompt (CFG ${cfg}).`,
  txt2img: (seed: number, latent: string, steps: number, sampler: string, cfg: number) =>
    `4. → seed ${seed} gives ${latent} latent noise; ${plural(steps, `${sampler} step`)} remove${steps === 1 ? "s" : ""} it, ${steps === 1 ? "" : "each one "}guided by the prompt (CFG ${cfg}).`,
  decoder: (latent: string, width: number, height: number) =>
    `5. → the VAE decoder turns the ${latent} latent into ${width}×${height} pixels (8× each side).`,
  animation: (frames: number) =>
    `The animation shows the latent at ${plural(frames, "point")} along the way.`,
} as const;

/**
 * What members are told when the OpenAI images API fails (src/backends/openai/errors.ts translates to these),
 * or when the OpenAI backend refuses a request itself (src/backends/openai/openai-backend.ts).
 */
export const OPENAI_MESSAGES = {
  timedOut: (seconds: string, tries: string) => `The image service did not answer within ${seconds}${tries}.`,
  unreachable: (host: string, tries: string) => `Could not reach the image service at ${host}${tries}.`,
  keyRefused: (host: string) =>
    `The OpenAI backend's API key was refused by ${host}; the operator needs to check OPENAI_API_KEY.`,
  modelMissing: (model: string, host: string) =>
    `The image model "${model}" is not available on ${host}; the operator needs to change OPENAI_IMAGE_MODEL.`,
  modelForbidden: (model: string, host: string, why: string) =>
    `The OpenAI API key has no access to "${model}" on ${host} (${why}); the operator needs to check OPENAI_API_KEY and OPENAI_IMAGE_MODEL.`,
  outOfCredit:
    "The OpenAI account behind OPENAI_API_KEY is out of credit or over its spending limit; the operator needs to check its billing.",
  serverError: (status: number, tries: string) => `The image service had an error (HTTP ${status})${tries}.`,
  notOffered: (host: string, status: number) =>
    `The image service at ${host} does not offer this (HTTP ${status}).`,
  refused: (why: string) => `The image service refused the request: ${why}`,
  misconfigured: (why: string) => `The OpenAI backend is misconfigured: ${why}`,
  unusableAnswer: "The image service's answer could not be used.",
  /** The host named in these messages when OPENAI_BASE_URL is not a URL. */
  unnamedHost: "the configured server",
  promptTooLong: (chars: number, model: string, max: number) =>
    `the prompt is ${chars} characters long; ${model} takes at most ${max}`,
  cannotUpscale: "The OpenAI backend cannot upscale an image.",
  noImage: "The image service answered without any image.",
  imageLinks: (host: string) =>
    `The image service at ${host} sent image links instead of image data; it needs to support response_format "b64_json".`,
  /** A V or U source image that cannot be sent as the model takes it. */
  sourceNotPng: (model: string) => `the image to vary could not be made a PNG for ${model}`,
  sourceNotSquare: (model: string, width: number, height: number) =>
    `${model} varies square images only; this one is ${width}x${height}`,
  sourceTooLarge: (bytes: number, model: string, maxBytes: number) =>
    `the image to vary is ${(bytes / 1e6).toFixed(1)} MB as a PNG; ${model} takes less than ${maxBytes / 1e6} MB`,
  /** How many times a request was tried, after a failure the SDK retried (empty when it never retries). */
  tries: (attempts: number) => (attempts <= 1 ? "" : ` (tried ${attempts} times)`),
} as const;

/** The notes under an OpenAI result: what was adjusted, and what is not known (src/backends/openai/openai-backend.ts). */
export const OPENAI_NOTES = {
  noNegativePrompt: "OpenAI models take no negative prompt; it was not used",
  /** `sizes`: every size the model makes, smallest first. */
  sizeChanged: (asked: string, made: string, model: string, sizes: string) =>
    `size ${asked} became ${made}, the nearest size ${model} makes (${sizes})`,
  noInitImage: (model: string) =>
    `${model} cannot start from an image: these are new images from the same prompt`,
  variationIgnoresPrompt: (model: string) => `${model} variations follow the image; the prompt is not used`,
  fewerImages: (made: number, asked: number) =>
    `the image service made ${made} of the ${asked} images asked for`,
  /** A later request of the job failed after earlier ones made images; `why` is the failure's message. */
  partial: (made: number, asked: number, why: string) => `only ${made} of ${asked} images were made: ${why}`,
  otherSize: (made: string, asked: string) => `the image service made ${made} instead of ${asked}`,
  quality: (quality: string) => `quality: ${quality}`,
  noSeed: "seed: n/a (OpenAI has no seeds; the same prompt gives different images)",
  noPrice: (model: string) => `no price known for ${model}; set OPENAI_IMAGE_PRICES for a cost estimate`,
  estimatedCost: (usd: number) => `estimated cost: $${usd.toFixed(3)}`,
} as const;

/**
 * What the OpenAI backend tells the operator when easel starts (its constructor, and the one check of the key
 * and model in src/backends/openai/startup-check.ts): refusals that stop `npm start`, and warnings it logs.
 */
export const OPENAI_SETUP_TEXT = {
  noKey: "OPENAI_API_KEY is not set: the OpenAI backend needs an API key.",
  qualityNotApplicable: (quality: string, model: string) =>
    `OPENAI_IMAGE_QUALITY=${quality} does not apply: ${model} has no quality setting; leave it empty.`,
  qualityNotTaken: (quality: string, model: string, qualities: readonly string[]) =>
    `OPENAI_IMAGE_QUALITY=${quality} does not apply to ${model}; it takes ${qualities.join(", ")}.`,
  shutsDown: (model: string, host: string, date: string) =>
    `OPENAI_IMAGE_MODEL=${model}: ${host} says this model shuts down on ${date}; choose another before then.`,
  keyRefused: (host: string, detail: string) =>
    `OPENAI_API_KEY was refused by ${host} (${detail}). Set a valid key, or leave OPENAI_API_KEY empty to turn the OpenAI backend off.`,
  noAccess: (model: string, host: string, detail: string) =>
    `OPENAI_API_KEY has no access to OPENAI_IMAGE_MODEL=${model} on ${host} (${detail}).`,
  /** `retired`: a model OpenAI retired (dall-e-2, dall-e-3), which a compatible server may still offer. */
  modelMissing: (model: string, host: string, retired: boolean) =>
    `OPENAI_IMAGE_MODEL=${model} does not exist on ${host}.${
      retired
        ? ` OpenAI retired ${model} on 2026-05-12: set OPENAI_IMAGE_MODEL=gpt-image-1, or OPENAI_BASE_URL to a compatible server that still offers it.`
        : " Set OPENAI_IMAGE_MODEL to a model this server offers (e.g. gpt-image-1)."
    }`,
  noModelsEndpoint: (host: string, model: string, detail: string) =>
    `${host} has no models endpoint, so OPENAI_IMAGE_MODEL=${model} was not checked (${detail}).`,
  unreachable: (host: string, why: string) =>
    `cannot reach OpenAI at ${host}: ${why} (check the network, or OPENAI_BASE_URL); the OpenAI backend starts anyway, and its jobs retry and report errors.`,
  notChecked: (detail: string) =>
    `The OpenAI backend could not be checked at start-up (${detail}); jobs will retry and report errors.`,
} as const;

/** An admin's `/info` lines on paid images (core/spend-report.ts). */
export const SPEND_TEXT = {
  server: (images: number, usd: number, todayImages: number, todayUsd: number) =>
    `OpenAI images on this server: ${images} (about $${usd.toFixed(2)}); today ${todayImages} (about $${todayUsd.toFixed(2)})`,
  spender: (userId: string, images: number, usd: number) =>
    `  <@${userId}>: ${images} image${images === 1 ? "" : "s"} (about $${usd.toFixed(2)})`,
} as const;

/** The device `/info` names (src/backends/ldm/worker-pool.ts knows which is in use). */
export const DEVICE_TEXT = {
  notLoadedYet: (device: string) => `${device} (no model loaded yet)`,
  openAiOnly: "none (OpenAI only)",
} as const;

/**
 * What `npm start` says (the composition root, src/main.ts and src/easel.ts): why easel cannot start, that it
 * serves, and how it stops. The operator reads these on the terminal or in the journal.
 */
export const STARTUP_TEXT = {
  noPlatform:
    "easel cannot start: no chat platform is configured (copy .env.example to .env and fill it in).",
  /** One thing a platform lacks, under {@link STARTUP_TEXT.noPlatform}. */
  missing: (line: string) => `  - ${line}`,
  cannotStart: (why: string) => `easel cannot start: ${why}`,
  /** Something the operator should fix though easel starts (an OpenAI model that shuts down soon). */
  warning: (warning: string) => `easel: ${warning}`,
  serving: (version: string, platforms: readonly string[], dataDir: string) =>
    `easel ${version}: serving ${platforms.join(" and ")}; data in ${dataDir}`,
  stopping: (signal: string, graceSeconds: number) =>
    `easel: ${signal}, stopping (running jobs get ${graceSeconds} s)…`,
  exitingNow: (signal: string) =>
    `easel: ${signal} again, exiting now (waiting jobs stay queued for the next start)`,
  stopFailed: (why: string) => `easel: ${why}`,
  nothingToRender: (modelsDir: string) =>
    `easel has nothing to render with: no model folder in ${modelsDir} (EASEL_MODELS_DIR; ` +
    "`easel models pull NAME` downloads one) and no OPENAI_API_KEY.",
  defaultModelBroken: (model: string, folder: string, why: string) =>
    `the default model ${model} (${folder}) does not load: ${why}. Fix the folder, or set EASEL_MODEL to another one.`,
} as const;

/** The commands' own replies (commands/*.ts); what they share with buttons is in BOT_MESSAGES. */
export const COMMAND_TEXT = {
  /** A prompt option left empty (`/imagine`, `/compare`); shown as "the prompt option: give a prompt". */
  givePrompt: "give a prompt",
  /** `/imagine` with a vote (the `vote` option, `--vote`, a contest channel) that allows fewer than two images. */
  voteNeedsTwo: (max: number) =>
    `A vote needs at least 2 images: give --n 2 or more (the limit here allows ${max}).`,
  info: {
    heading: (version: string, device: string) => `easel ${version} · device: ${device}`,
    /** A backend's models, and its recent time per image when there is one. */
    backend: (backend: string, models: readonly string[], msPerImage: number | undefined) =>
      `${backend}: ${models.join(", ")}${msPerImage === undefined ? "" : ` · ${formatDuration(msPerImage)} per image lately`}`,
    queue: (waiting: number, rendering: number) => `queue: ${waiting} waiting, ${rendering} rendering`,
  },
  leaderboard: {
    empty: "No arena matches yet: try `/compare`.",
    heading: "**Models by arena rating**",
    /** One model's line; `winPercent` is undefined before its first match. */
    model: (line: {
      rank: number;
      model: string;
      rating: number;
      votes: number;
      winPercent: number | undefined;
      played: number;
      msPerImage: number | undefined;
    }) =>
      `${line.rank}. ${line.model} · Elo ${line.rating} · ${plural(line.votes, "vote")} · won ${
        line.winPercent === undefined ? "–" : `${line.winPercent} %`
      } of ${line.played}${line.msPerImage === undefined ? "" : ` · ${formatDuration(line.msPerImage)} per image`}`,
  },
  queue: {
    /** One job; `userId` when an admin lists everyone's, `prompt` already shortened. */
    job: (line: {
      jobId: string;
      running: boolean;
      position: number | undefined;
      etaMs: number | undefined;
      userId: string | undefined;
      prompt: string;
    }) =>
      `\`${line.jobId}\` ${line.running ? "rendering" : `#${line.position ?? "?"} · ETA ${formatDuration(line.etaMs ?? 0)}`}${
        line.userId === undefined ? "" : ` · <@${line.userId}>`
      } · ${line.prompt}`,
  },
  settings: {
    /** For {@link BOT_MESSAGES.adminsOnly}. */
    adminAction: "change settings",
    /** `/settings show`: what this server and this channel set (key, shown value), and every key there is. */
    overview: (
      server: readonly (readonly [string, string])[],
      channel: readonly (readonly [string, string])[],
      keys: readonly string[],
    ) =>
      [
        "Server settings:",
        ...(server.length ? server.map(([k, v]) => `  ${k}: ${v}`) : ["  (defaults)"]),
        "This channel:",
        ...(channel.length ? channel.map(([k, v]) => `  ${k}: ${v}`) : ["  (the server's)"]),
        `Keys: ${keys.join(", ")}`,
        NSFW_SCOPE_NOTE,
      ].join("\n"),
    unknownKey: (key: string, keys: readonly string[]) =>
      `There is no setting "${key}". Settings: ${keys.join(", ")}`,
    wrongScope: (key: string, scopes: readonly string[]) => `${key} is a ${scopes.join(" or ")} setting.`,
    /** A value the key cannot take; `why` is one of the reasons below, or the settings check's. */
    malformed: (key: string, why: string) => `${key}: ${why}`,
    notOnOff: (value: string) => `give on or off (got "${value}")`,
    notSaved: (why: string) => `Not saved: ${why}`,
    /** A key set (`value` as shown) or reset (`value` undefined); the nsfw key's answer says what it really changes. */
    changed: (key: string, value: string | undefined, scope: "server" | "channel") => {
      const place = scope === "server" ? "this server" : "this channel";
      const done =
        value === undefined ? `${key} reset for ${place}.` : `${key} set to ${value} for ${place}.`;
      return key === "nsfw" ? `${done} ${NSFW_SCOPE_NOTE}` : done;
    },
  },
  top: {
    /** No votes in the period ("day", "week", "month" or "all"). */
    empty: (period: string) => `No votes this ${period === "all" ? "far" : period}.`,
    heading: (period: string) => `**Top images (${period})**`,
    /** What a result's prompt reads when its job is gone. */
    unknownPrompt: "?",
    /** One result; `prompt` already shortened, `link` to the posted message when there is one. */
    result: (rank: number, votes: number, ownerId: string, prompt: string, link: string | undefined) =>
      `${rank}. ${plural(votes, "vote")} · <@${ownerId}> · ${prompt}${link === undefined ? "" : ` ${link}`}`,
    creatorsHeading: "**Top creators**",
    creator: (rank: number, ownerId: string, votes: number) =>
      `${rank}. <@${ownerId}> · ${plural(votes, "vote")}`,
  },
} as const;

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

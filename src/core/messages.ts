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
  queueFull: (max: number) => `The queue is full (${max} jobs). Please try again in a few minutes.`,
  userLimit: (max: number) =>
    `You already have ${max} job${max === 1 ? "" : "s"} waiting or rendering (the limit); wait for one to finish.`,
  workspaceLimit: (max: number) =>
    `This server already has ${max} jobs waiting (its limit); please try again soon.`,
  backendUnavailable: (backend: string) => `The ${backend} renderer is not configured on this bot.`,
  timedOut: (ms: number) =>
    `Rendering took longer than ${formatDuration(ms).replace("about ", "")}; it was stopped.`,
  interruptedOutOfRetries: "The renderer stopped while working on this several times; giving up on it.",
  failedGeneric: "Something went wrong while rendering. The operator can find details in the logs.",
  contentPolicy: "Rejected by the provider's safety system. Try rewording the prompt.",
} as const;

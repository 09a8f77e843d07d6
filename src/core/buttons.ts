import type { Parsed } from "./aspect.ts";

/**
 * The buttons under a result, as short ids that fit Discord's 100-character custom_id and Slack's action ids:
 * `action:jobId[:variant]`. Parsing never throws; a press with an id easel did not make is refused.
 */

export const BUTTON_ACTIONS = {
  reroll: "r",
  variation: "v",
  upscale: "u",
  cancel: "x",
  delete: "d",
  howItWasMade: "m",
  /** A vote for one variant (or arena side); the job id is the ballot id. */
  vote: "b",
} as const;

/** What a button does. */
export type ButtonAction = keyof typeof BUTTON_ACTIONS;

/** A decoded button press. */
export interface ButtonId {
  action: ButtonAction;
  jobId: string;
  /** 1-based image index for variation/upscale; the choice for a vote. */
  variant?: number;
}

const BY_CODE = new Map<string, ButtonAction>(
  Object.entries(BUTTON_ACTIONS).map(([action, code]) => [code, action as ButtonAction]),
);
const JOB_ID = /^[0-9a-z]{6,32}$/;

/** Encodes a button; the result is at most 40 characters. */
export function encodeButtonId(button: ButtonId): string {
  const code = BUTTON_ACTIONS[button.action];
  return button.variant === undefined
    ? `${code}:${button.jobId}`
    : `${code}:${button.jobId}:${button.variant}`;
}

/** Decodes a button id, or says why it is not one of easel's. */
export function parseButtonId(id: string): Parsed<ButtonId> {
  const [code, jobId, variant, ...rest] = id.split(":");
  const action = code === undefined ? undefined : BY_CODE.get(code);
  if (action === undefined || jobId === undefined || !JOB_ID.test(jobId) || rest.length > 0) {
    return { ok: false, reason: "this button is not one of easel's (or is from an older version)" };
  }
  if (action === "variation" || action === "upscale" || action === "vote") {
    const n = Number(variant);
    if (variant === undefined || !/^[1-9]$/.test(variant)) {
      return { ok: false, reason: "this button does not say which image it is for" };
    }
    return { ok: true, value: { action, jobId, variant: n } };
  }
  if (variant !== undefined) return { ok: false, reason: "this button is not one of easel's" };
  return { ok: true, value: { action, jobId } };
}

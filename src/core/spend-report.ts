import { SPEND_TEXT } from "./messages.ts";
import type { Requester } from "./request.ts";
import { type SpendLedger, utcDay } from "./spend.ts";

/** How many of a server's members `/info` names as its top spenders. */
const TOP_SPENDERS = 5;

/**
 * What an admin's `/info` says of paid images on their server: the totals, today's, and who spent most.
 * One line each.
 */
export function spendReport(
  ledger: Pick<SpendLedger, "totals" | "topSpenders">,
  where: Pick<Requester, "platform" | "workspaceId">,
  now: number = Date.now(),
): string[] {
  const query = { platform: where.platform, workspaceId: where.workspaceId };
  const all = ledger.totals(query);
  const today = ledger.totals({ ...query, fromDay: utcDay(now) });
  return [
    SPEND_TEXT.server(all.images, all.costUsd, today.images, today.costUsd),
    ...ledger.topSpenders(query, TOP_SPENDERS).map((u) => SPEND_TEXT.spender(u.userId, u.images, u.costUsd)),
  ];
}

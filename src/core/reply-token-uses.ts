import { ExpiringMap } from "./expiring-map.ts";

/**
 * What is left of the reply tokens a platform hands out with its events (Slack's response_url: 5 uses within
 * 30 minutes): uses counted in this process, a token given up a margin before it dies or once the platform
 * refused it. Bounded (core/expiring-map.ts): an entry can go once its token's lifetime is over (the platform
 * refuses it then, counted or not, and `usable` says no from the caller's own issuedAt), so the map holds at
 * most the tokens of one lifetime, and never more than `maxTracked`. Past that cap the oldest are forgotten even
 * while they live: a forgotten token's uses start again from 0 (as after a restart), and the platform's refusal
 * of one use too many is what then stops it.
 */

export interface ReplyTokenLimits {
  maxUses: number;
  lifetimeMs: number;
  /** A token is given up this long before it dies, so a use never races its expiry. */
  marginMs: number;
  maxTracked: number;
}

interface Use {
  uses: number;
  issuedAt: number;
  /** The platform refused it: it is not tried again. */
  dead: boolean;
}

export class ReplyTokenUses {
  private readonly tokens: ExpiringMap<string, Use>;

  constructor(
    private readonly limits: ReplyTokenLimits,
    private readonly now: () => number,
  ) {
    this.tokens = new ExpiringMap(limits.lifetimeMs, limits.maxTracked, now);
  }

  /** Whether `token` (issued at `issuedAt`, default now) may be used once more. */
  usable(token: string, issuedAt?: number): boolean {
    const use = this.use(token, issuedAt);
    const { maxUses, lifetimeMs, marginMs } = this.limits;
    return !use.dead && use.uses < maxUses && this.now() < use.issuedAt + lifetimeMs - marginMs;
  }

  /** Counts one use of `token`; answers its entry, to mark it refused if the platform says so. */
  spend(token: string, issuedAt?: number): { dead: boolean } {
    const use = this.use(token, issuedAt);
    use.uses++;
    return use;
  }

  /** Uses of `token` so far in this process. */
  uses(token: string): number {
    return this.tokens.get(token)?.value.uses ?? 0;
  }

  /** How many tokens are tracked: for tests and metrics. */
  get tracked(): number {
    return this.tokens.size;
  }

  private use(token: string, issuedAt: number | undefined): Use {
    const known = this.tokens.get(token)?.value;
    if (known) return known;
    const use = { uses: 0, issuedAt: issuedAt ?? this.now(), dead: false };
    this.tokens.set(token, use, use.issuedAt);
    return use;
  }
}

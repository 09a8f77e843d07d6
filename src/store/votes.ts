import type Database from "better-sqlite3";
import { EaselError } from "../core/errors.ts";
import {
  type ArenaMatch,
  type Ballot,
  type BallotKind,
  type EloSettings,
  eloUpdate,
  type ModelRating,
  type Tally,
  type TopResult,
  type VoteChange,
  type VotesPort,
} from "../core/voting.ts";
import { guard, writeTransaction } from "./database.ts";

/**
 * Ballots, votes, arena matches and model ratings (migration 3). A press is one IMMEDIATE transaction: read
 * the member's vote, then add, move or remove it; the primary key (ballot, platform, voter) makes a second row
 * impossible whatever the interleaving, so fifty simultaneous presses by one member leave at most one vote.
 */

interface BallotRow {
  id: string;
  kind: BallotKind;
  platform: string;
  workspace_id: string;
  channel_id: string;
  owner_id: string;
  choices: number;
  created_at: number;
  closes_at: number | null;
  closed_at: number | null;
  closed_by: "deadline" | "deleted" | null;
  winner: number | null;
}

export class VoteStore implements VotesPort {
  private readonly insertBallot: Database.Statement<unknown[]>;
  private readonly getBallot: Database.Statement<[string], BallotRow>;
  private readonly getVote: Database.Statement<
    [string, string, string],
    { choice: number; voted_at: number }
  >;
  private readonly insertVote: Database.Statement<unknown[]>;
  private readonly updateVote: Database.Statement<unknown[]>;
  private readonly deleteVote: Database.Statement<[string, string, string]>;
  private readonly counts: Database.Statement<[string], { choice: number; n: number; last: number }>;
  private readonly closeStmt: Database.Statement<unknown[]>;
  private readonly deadlines: Database.Statement<[], BallotRow>;

  constructor(
    private readonly db: Database.Database,
    private readonly clock: () => number = Date.now,
  ) {
    this.insertBallot = db.prepare(
      `INSERT INTO ballots (id, kind, platform, workspace_id, channel_id, owner_id, choices, created_at, closes_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
    );
    this.getBallot = db.prepare("SELECT * FROM ballots WHERE id = ?");
    this.getVote = db.prepare(
      "SELECT choice, voted_at FROM votes WHERE ballot_id = ? AND platform = ? AND voter_id = ?",
    );
    this.insertVote = db.prepare(
      "INSERT INTO votes (ballot_id, platform, voter_id, choice, voted_at) VALUES (?, ?, ?, ?, ?)",
    );
    this.updateVote = db.prepare(
      "UPDATE votes SET choice = ?, voted_at = ? WHERE ballot_id = ? AND platform = ? AND voter_id = ?",
    );
    this.deleteVote = db.prepare("DELETE FROM votes WHERE ballot_id = ? AND platform = ? AND voter_id = ?");
    this.counts = db.prepare(
      "SELECT choice, count(*) AS n, max(voted_at) AS last FROM votes WHERE ballot_id = ? GROUP BY choice",
    );
    this.closeStmt = db.prepare(
      "UPDATE ballots SET closed_at = ?, closed_by = ?, winner = ? WHERE id = ? AND closed_at IS NULL",
    );
    this.deadlines = db.prepare(
      "SELECT * FROM ballots WHERE closed_at IS NULL AND closes_at IS NOT NULL ORDER BY closes_at",
    );
  }

  openBallot(ballot: Omit<Ballot, "closedAt" | "closedBy" | "winner">): Ballot {
    return writeTransaction(this.db, `opening ballot ${ballot.id}`, () => {
      this.insertBallot.run(
        ballot.id,
        ballot.kind,
        ballot.platform,
        ballot.workspaceId,
        ballot.channelId,
        ballot.ownerId,
        ballot.choices,
        ballot.createdAt,
        ballot.closesAt ?? null,
      );
      const row = this.getBallot.get(ballot.id);
      if (!row) throw new EaselError("not_found", `ballot ${ballot.id} was not stored`);
      return toBallot(row);
    });
  }

  ballot(id: string): Ballot | undefined {
    const row = guard(`reading ballot ${id}`, () => this.getBallot.get(id));
    return row ? toBallot(row) : undefined;
  }

  press(
    ballotId: string,
    voter: { platform: string; userId: string },
    choice: number,
    now: number,
    debounceMs: number,
  ): VoteChange {
    return writeTransaction(this.db, `recording a vote on ${ballotId}`, () => {
      const existing = this.getVote.get(ballotId, voter.platform, voter.userId);
      if (!existing) {
        this.insertVote.run(ballotId, voter.platform, voter.userId, choice, now);
        return "added";
      }
      if (existing.choice !== choice) {
        this.updateVote.run(choice, now, ballotId, voter.platform, voter.userId);
        return "moved";
      }
      if (now - existing.voted_at < debounceMs) return "unchanged";
      this.deleteVote.run(ballotId, voter.platform, voter.userId);
      return "removed";
    });
  }

  tally(ballotId: string): Tally {
    const ballot = this.ballot(ballotId);
    const size = ballot?.choices ?? 0;
    const counts = Array.from({ length: size }, () => 0);
    const lastVoteAt: (number | undefined)[] = Array.from({ length: size }, () => undefined);
    let total = 0;
    for (const row of guard(`counting votes on ${ballotId}`, () => this.counts.all(ballotId))) {
      if (row.choice < 1 || row.choice > size) continue;
      counts[row.choice - 1] = row.n;
      lastVoteAt[row.choice - 1] = row.last;
      total += row.n;
    }
    return { counts, lastVoteAt, total };
  }

  close(ballotId: string, closedAt: number, by: "deadline" | "deleted", winner: number | undefined): boolean {
    return writeTransaction(this.db, `closing ballot ${ballotId}`, () => {
      return this.closeStmt.run(closedAt, by, winner ?? null, ballotId).changes === 1;
    });
  }

  openDeadlines(): Ballot[] {
    return guard("listing open contests", () => this.deadlines.all()).map(toBallot);
  }

  setDeadline(ballotId: string, closesAt: number): void {
    writeTransaction(this.db, `setting the deadline of ballot ${ballotId}`, () => {
      // A result's ballot that gets a deadline is a contest (its first vote may have come before the deadline).
      this.db
        .prepare(
          `UPDATE ballots SET closes_at = ?, kind = CASE kind WHEN 'result' THEN 'contest' ELSE kind END
           WHERE id = ? AND closed_at IS NULL`,
        )
        .run(closesAt, ballotId);
    });
  }

  unannounced(): Ballot[] {
    const rows = guard("listing unannounced contests", () =>
      this.db
        .prepare(
          `SELECT b.* FROM ballots b LEFT JOIN arena_matches m ON m.id = b.id
           WHERE b.closed_by = 'deadline' AND b.kind IN ('contest', 'arena')
             AND NOT EXISTS (SELECT 1 FROM deliveries d
                             WHERE d.job_id = coalesce(m.job_a, b.id) AND d.kind = 'announcement')
           ORDER BY b.closed_at`,
        )
        .all(),
    ) as BallotRow[];
    return rows.map(toBallot);
  }

  /** Records an arena match (its ballot must exist). */
  recordMatch(match: ArenaMatch): void {
    writeTransaction(this.db, `recording arena match ${match.id}`, () => {
      this.db
        .prepare(
          "INSERT INTO arena_matches (id, prompt, job_a, job_b, model_a, model_b) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .run(match.id, match.prompt, match.jobA, match.jobB, match.modelA, match.modelB);
    });
  }

  match(id: string): ArenaMatch | undefined {
    const row = guard(`reading arena match ${id}`, () =>
      this.db.prepare("SELECT * FROM arena_matches WHERE id = ?").get(id),
    ) as
      | {
          id: string;
          prompt: string;
          job_a: string;
          job_b: string;
          model_a: string;
          model_b: string;
          rated_at: number | null;
        }
      | undefined;
    if (!row) return undefined;
    return {
      id: row.id,
      prompt: row.prompt,
      jobA: row.job_a,
      jobB: row.job_b,
      modelA: row.model_a,
      modelB: row.model_b,
      ...(row.rated_at === null ? {} : { ratedAt: row.rated_at }),
    };
  }

  /** The arena match a job belongs to, if any. */
  matchOfJob(jobId: string): ArenaMatch | undefined {
    const row = guard(`finding the arena match of job ${jobId}`, () =>
      this.db.prepare("SELECT id FROM arena_matches WHERE job_a = ? OR job_b = ?").get(jobId, jobId),
    ) as { id: string } | undefined;
    return row ? this.match(row.id) : undefined;
  }

  /**
   * Rates a closed match once: both models' Elo, games, wins/losses/draws and votes (scoreA undefined: nobody
   * voted, the votes count but no game is played). Returns the ratings after, or undefined when the match was
   * already rated.
   */
  rateMatch(
    matchId: string,
    votes: [number, number],
    elo: EloSettings,
    scoreA: number | undefined,
  ): [ModelRating, ModelRating] | undefined {
    return writeTransaction(this.db, `rating arena match ${matchId}`, () => {
      const match = this.match(matchId);
      if (!match || match.ratedAt !== undefined) return undefined;
      this.db.prepare("UPDATE arena_matches SET rated_at = ? WHERE id = ?").run(this.clock(), matchId);
      const ensure = this.db.prepare(
        "INSERT INTO model_ratings (model, rating) VALUES (?, ?) ON CONFLICT DO NOTHING",
      );
      ensure.run(match.modelA, elo.start);
      ensure.run(match.modelB, elo.start);
      const a = this.rating(match.modelA) as ModelRating;
      const b = this.rating(match.modelB) as ModelRating;
      const [ra, rb] =
        scoreA === undefined ? [a.rating, b.rating] : eloUpdate(a.rating, b.rating, scoreA, elo.k);
      const save = this.db.prepare(
        `UPDATE model_ratings SET rating = ?, games = games + ?, wins = wins + ?, losses = losses + ?,
           draws = draws + ?, votes = votes + ? WHERE model = ?`,
      );
      const played = scoreA === undefined ? 0 : 1;
      const won = (s: number | undefined) => (s === 1 ? 1 : 0);
      const lost = (s: number | undefined) => (s === 0 ? 1 : 0);
      const drew = (s: number | undefined) => (s === 0.5 ? 1 : 0);
      const scoreB = scoreA === undefined ? undefined : 1 - scoreA;
      save.run(ra, played, won(scoreA), lost(scoreA), drew(scoreA), votes[0], match.modelA);
      save.run(rb, played, won(scoreB), lost(scoreB), drew(scoreB), votes[1], match.modelB);
      return [this.rating(match.modelA) as ModelRating, this.rating(match.modelB) as ModelRating];
    });
  }

  rating(model: string): ModelRating | undefined {
    const row = guard(`reading the rating of ${model}`, () =>
      this.db.prepare("SELECT * FROM model_ratings WHERE model = ?").get(model),
    ) as ModelRating | undefined;
    return row ? { ...row } : undefined;
  }

  msPerImage(model: string): number | undefined {
    const [backend, ...rest] = model.split(":");
    const row = guard(`timing model ${model}`, () =>
      this.db
        .prepare(
          `SELECT avg((rendered_at - started_at) * 1.0 / json_extract(request, '$.count')) AS ms FROM jobs
           WHERE backend = ? AND model = ? AND rendered_at IS NOT NULL AND started_at IS NOT NULL`,
        )
        .get(backend ?? "", rest.join(":")),
    ) as { ms: number | null } | undefined;
    return row?.ms ?? undefined;
  }

  /** Every rated model, best first. */
  ratings(): ModelRating[] {
    return guard("listing model ratings", () =>
      this.db.prepare("SELECT * FROM model_ratings ORDER BY rating DESC, model").all(),
    ) as ModelRating[];
  }

  /** Results (and contests) with the most votes since `since`, in one workspace. */
  topResults(platform: string, workspaceId: string, since: number, limit: number): TopResult[] {
    return guard("listing the top results", () =>
      this.db
        .prepare(
          `SELECT b.id AS ballotId, b.platform, b.workspace_id AS workspaceId, b.channel_id AS channelId,
                  b.owner_id AS ownerId, count(v.voter_id) AS votes
           FROM ballots b JOIN votes v ON v.ballot_id = b.id
           WHERE b.platform = ? AND b.workspace_id = ? AND b.kind != 'arena' AND b.created_at >= ?
             AND (b.closed_by IS NULL OR b.closed_by != 'deleted')
           GROUP BY b.id ORDER BY votes DESC, b.created_at LIMIT ?`,
        )
        .all(platform, workspaceId, since, limit),
    ) as TopResult[];
  }

  /** Members whose results got the most votes since `since`, in one workspace. */
  topCreators(
    platform: string,
    workspaceId: string,
    since: number,
    limit: number,
  ): { ownerId: string; votes: number }[] {
    return guard("listing the top creators", () =>
      this.db
        .prepare(
          `SELECT b.owner_id AS ownerId, count(v.voter_id) AS votes
           FROM ballots b JOIN votes v ON v.ballot_id = b.id
           WHERE b.platform = ? AND b.workspace_id = ? AND b.kind != 'arena' AND b.created_at >= ?
             AND (b.closed_by IS NULL OR b.closed_by != 'deleted')
           GROUP BY b.owner_id ORDER BY votes DESC, b.owner_id LIMIT ?`,
        )
        .all(platform, workspaceId, since, limit),
    ) as { ownerId: string; votes: number }[];
  }
}

function toBallot(row: BallotRow): Ballot {
  const ballot: Ballot = {
    id: row.id,
    kind: row.kind,
    platform: row.platform as Ballot["platform"],
    workspaceId: row.workspace_id,
    channelId: row.channel_id,
    ownerId: row.owner_id,
    choices: row.choices,
    createdAt: row.created_at,
  };
  if (row.closes_at !== null) ballot.closesAt = row.closes_at;
  if (row.closed_at !== null) ballot.closedAt = row.closed_at;
  if (row.closed_by !== null) ballot.closedBy = row.closed_by;
  if (row.winner !== null) ballot.winner = row.winner;
  return ballot;
}

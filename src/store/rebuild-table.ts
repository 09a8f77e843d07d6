import type Database from "better-sqlite3";
import { EaselError } from "../core/errors.ts";

/**
 * SQLite's recipe for a schema change ALTER TABLE cannot make (a CHECK constraint): create the new table,
 * copy the rows, drop the old one, rename the new one into its place, and put back its indexes and triggers.
 * Column list, indexes and triggers are read from the file rather than written out, so that the columns and
 * indexes other migrations added survive. Run inside the migration transaction, with foreign keys off (see
 * `Migration.rebuildsTables`): the tables that point at this one keep pointing at its name.
 */
export function rebuildTable(
  db: Database.Database,
  table: string,
  edit: (createSql: string) => string,
): void {
  const row = db.prepare("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?").get(table) as
    | { sql: string }
    | undefined;
  if (row === undefined) throw new EaselError("store_corrupt", `the table ${table} is missing`);
  const dependents = db
    .prepare(
      "SELECT sql FROM sqlite_schema WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL",
    )
    .all(table) as { sql: string }[];
  const temp = `${table}_rebuilt`;
  const edited = edit(row.sql);
  const header = /^CREATE TABLE\s+(?:"[^"]+"|\w+)/i;
  if (edited === row.sql || !header.test(edited)) {
    throw new EaselError(
      "store_corrupt",
      `the table ${table} does not have the definition this step expects`,
    );
  }
  db.exec(edited.replace(header, `CREATE TABLE "${temp}"`));
  const columns = (db.pragma(`table_info("${table}")`) as { name: string }[])
    .map((c) => `"${c.name}"`)
    .join(", ");
  db.exec(`INSERT INTO "${temp}" (${columns}) SELECT ${columns} FROM "${table}"`);
  // AUTOINCREMENT's counter: keep the highest key ever used, which may be above the highest row left (pruned).
  const hasSequence = db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence'").get();
  const sequence = hasSequence
    ? (db.prepare("SELECT seq FROM sqlite_sequence WHERE name = ?").get(table) as { seq: number } | undefined)
    : undefined;
  db.exec(`DROP TABLE "${table}"`);
  db.exec(`ALTER TABLE "${temp}" RENAME TO "${table}"`);
  if (sequence)
    db.prepare("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?").run(sequence.seq, table);
  for (const { sql } of dependents) db.exec(sql);
}

import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import type { PlannedFile } from "./layout.ts";

/** The checksums of one file, computed as its bytes go by (git's sha1 only where the tree gives one). */
export class Digest {
  private readonly sha256: Hash = createHash("sha256");
  private readonly gitSha1: Hash | undefined;

  constructor(private readonly file: PlannedFile) {
    // git hashes a blob with its header: the hub's oid of a small file is sha1("blob <size>\0" + content).
    this.gitSha1 = file.gitSha1 === undefined ? undefined : createHash("sha1").update(`blob ${file.size}\0`);
  }

  update(chunk: Uint8Array): void {
    this.sha256.update(chunk);
    this.gitSha1?.update(chunk);
  }

  /** Feeds a file on disk in chunks (files are GBs, never read whole). */
  async updateFromFile(path: string): Promise<this> {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }))
      this.update(chunk as Buffer);
    return this;
  }

  /** The sha256 of what went by, and which expected checksum it misses (undefined when all agree). */
  finish(): { sha256: string; mismatch?: string } {
    const sha256 = this.sha256.digest("hex");
    const gitSha1 = this.gitSha1?.digest("hex");
    if (this.file.sha256 !== undefined && this.file.sha256 !== sha256) {
      return { sha256, mismatch: `expected sha256 ${this.file.sha256}, got ${sha256}` };
    }
    if (this.file.gitSha1 !== undefined && this.file.gitSha1 !== gitSha1) {
      return { sha256, mismatch: `expected git blob sha1 ${this.file.gitSha1}, got ${gitSha1}` };
    }
    return { sha256 };
  }
}

import type { ListFileEntry } from "@huggingface/hub";
import { EaselError } from "../../../core/errors.ts";
import type { KnownModel } from "./known-models.ts";

/** One file to fetch, with every checksum known for it. */
export interface PlannedFile {
  path: string;
  size: number;
  /** From the tree's `lfs.oid`, or a pin. */
  sha256?: string;
  /** The tree's `oid` of a non-LFS file: sha1("blob <size>\0" + content). */
  gitSha1?: string;
}

/** The ONNX export's components and the files of each that the pipeline (or ORT, for external data) reads. */
const COMPONENT_FILES = ["model.onnx", "weights.pb", "model.onnx_data", "model.onnx.data", "config.json"];
const TOKENIZER_FILES = [
  "vocab.json",
  "merges.txt",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "added_tokens.json",
];

/** Files of the export layout; everything else in a repo (PyTorch weights, safety checker, docs) is skipped. */
const LAYOUT_FILES: ReadonlySet<string> = new Set([
  "model_index.json",
  "scheduler/scheduler_config.json",
  ...["tokenizer", "tokenizer_2"].flatMap((folder) => TOKENIZER_FILES.map((file) => `${folder}/${file}`)),
  ...["text_encoder", "text_encoder_2", "unet", "vae_decoder", "vae_encoder"].flatMap((component) =>
    COMPONENT_FILES.map((file) => `${component}/${file}`),
  ),
]);

/** Without these the folder is no usable model, so a repo lacking one is refused before any download. */
const REQUIRED_FILES = [
  "text_encoder/model.onnx",
  "unet/model.onnx",
  "vae_decoder/model.onnx",
  "tokenizer/vocab.json",
  "tokenizer/merges.txt",
  "scheduler/scheduler_config.json",
];

/** SDXL's second encoder and tokenizer: an SDXL export without them cannot render. */
const SDXL_REQUIRED_FILES = ["text_encoder_2/model.onnx", "tokenizer_2/vocab.json", "tokenizer_2/merges.txt"];

/**
 * The layout files of the hub's tree with their checksums, checked against the pins and for completeness
 * (`listFiles` gives each entry's git `oid` and, for LFS files, `lfs.oid`: the sha256 of the content).
 */
export function planFiles(model: KnownModel, tree: ListFileEntry[]): PlannedFile[] {
  const where = `${model.repo}@${model.revision}`;
  const refuse = (message: string) => new EaselError("download_failed", `refusing ${where}: ${message}`);
  const byPath = new Map(tree.filter((e) => e.type === "file").map((e) => [e.path, e]));
  const pins = new Map((model.files ?? []).map((pin) => [pin.path, pin]));
  for (const pin of pins.values()) {
    const entry = byPath.get(pin.path);
    if (!entry) throw refuse(`it has no ${pin.path}, which known-models.json pins`);
    const size = entry.lfs?.size ?? entry.size;
    if (pin.size !== undefined && pin.size !== size) {
      throw refuse(`${pin.path} is ${size} bytes on the hub but known-models.json pins ${pin.size}`);
    }
    const sha256 = entry.lfs?.oid.toLowerCase();
    if (pin.sha256 !== undefined && sha256 !== undefined && pin.sha256 !== sha256) {
      throw refuse(`${pin.path} has sha256 ${sha256} on the hub but known-models.json pins ${pin.sha256}`);
    }
  }
  const required =
    model.family === "sdxl" || model.family === "sdxl-turbo"
      ? [...REQUIRED_FILES, ...SDXL_REQUIRED_FILES]
      : REQUIRED_FILES;
  const missing = required.filter((path) => !byPath.has(path));
  if (missing.length > 0) {
    throw new EaselError(
      "not_supported",
      `${where} is not an ONNX export in the diffusers layout: it lacks ${missing.join(", ")}`,
    );
  }
  return [...byPath.values()]
    .filter((entry) => LAYOUT_FILES.has(entry.path))
    .sort((a, b) => a.path.localeCompare(b.path))
    .map((entry) => {
      const sha256 = entry.lfs?.oid.toLowerCase() ?? pins.get(entry.path)?.sha256;
      const gitSha1 = entry.lfs ? undefined : entry.oid?.toLowerCase();
      return {
        path: entry.path,
        size: entry.lfs?.size ?? entry.size,
        ...(sha256 ? { sha256 } : {}),
        ...(gitSha1 ? { gitSha1 } : {}),
      };
    });
}

import { existsSync } from "node:fs";
import { join } from "node:path";
import { EaselError } from "../../core/errors.ts";
import { type ClipImageConfig, clipPixelValues, readClipImageConfig } from "./clip-image-processor.ts";
import { floatTensor, type ort, type SessionFactory } from "./onnx-session.ts";
import type { Rgb8 } from "./pil-resize.ts";

/**
 * A model's own safety checker (diffusers' StableDiffusionSafetyChecker as the hub's SD 1.x ONNX exports carry
 * it): `safety_checker/model.onnx` with inputs `clip_input` [B,3,224,224] and `images` [B,H,W,3], outputs
 * `out_images` and `has_nsfw_concepts`, fed by `feature_extractor/preprocessor_config.json`'s CLIP
 * preprocessing. Run after decoding, one image at a time as diffusers' ONNX pipeline does (the export does not
 * take batches reliably). easel blacks out a flagged image itself, as diffusers returns it.
 */

/** Where a checker's two files are, inside a model folder or a folder lent with EASEL_SAFETY_CHECKER. */
export interface SafetyCheckerFiles {
  model: string;
  preprocessor: string;
}

/**
 * The checker files in `dir`, undefined when it has none; a folder with only one of the two is refused,
 * naming the file that is missing.
 */
export function findSafetyChecker(dir: string): SafetyCheckerFiles | undefined {
  const model = join(dir, "safety_checker", "model.onnx");
  const preprocessor = join(dir, "feature_extractor", "preprocessor_config.json");
  const hasModel = existsSync(model);
  const hasPreprocessor = existsSync(preprocessor);
  if (!hasModel && !hasPreprocessor) return undefined;
  if (!hasPreprocessor) {
    throw new EaselError(
      "model_file",
      `${model} needs ${preprocessor} (its CLIP preprocessing), which is missing`,
    );
  }
  if (!hasModel) {
    throw new EaselError(
      "model_file",
      `${preprocessor} has no safety checker beside it: ${model} is missing`,
    );
  }
  return { model, preprocessor };
}

const INPUTS = ["clip_input", "images"] as const;
const OUTPUTS = ["out_images", "has_nsfw_concepts"] as const;

type TensorMeta = ort.InferenceSession.ValueMetadata & { type?: string };

export class SafetyChecker {
  private constructor(
    readonly files: SafetyCheckerFiles,
    private readonly session: ort.InferenceSession,
    private readonly preprocessing: ClipImageConfig,
    private readonly floatTypes: { clip: "float32" | "float16"; images: "float32" | "float16" },
  ) {}

  /** Loads and checks a checker; unexpected inputs or outputs are refused naming the file and what was expected. */
  static async load(files: SafetyCheckerFiles, factory: SessionFactory): Promise<SafetyChecker> {
    const preprocessing = readClipImageConfig(files.preprocessor);
    const session = await factory.create(files.model);
    try {
      const inputs = [...session.inputNames].sort();
      const outputs = session.outputNames;
      if (inputs.join() !== [...INPUTS].sort().join() || !OUTPUTS.every((o) => outputs.includes(o))) {
        throw new EaselError(
          "model_file",
          `${files.model}: a safety checker takes ${INPUTS.join(" and ")} and gives ${OUTPUTS.join(" and ")}; ` +
            `this one takes ${inputs.join(", ") || "nothing"} and gives ${outputs.join(", ") || "nothing"}`,
        );
      }
      const typeOf = (name: string): "float32" | "float16" => {
        const meta = (session.inputMetadata as readonly TensorMeta[]).find((m) => m.name === name);
        const type = meta?.type ?? "float32";
        if (type !== "float32" && type !== "float16") {
          throw new EaselError("model_file", `${files.model}: input ${name} is ${type}, not a float tensor`);
        }
        return type;
      };
      return new SafetyChecker(files, session, preprocessing, {
        clip: typeOf("clip_input"),
        images: typeOf("images"),
      });
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  /** Which of `images` the checker flags, in order. */
  async flags(images: readonly Rgb8[]): Promise<boolean[]> {
    const flagged: boolean[] = [];
    for (const image of images) {
      const clip = clipPixelValues(this.preprocessing, [image]);
      // The checker's own copy of the image: only the flag is used (easel blacks out a flagged image itself).
      // A loop: Float32Array.from with a map function is ~20× slower on 786k values.
      const pixels = new Float32Array(image.data.length);
      for (let i = 0; i < pixels.length; i++) pixels[i] = (image.data[i] as number) / 255;
      const out = await this.session.run({
        clip_input: floatTensor(this.floatTypes.clip, clip.data, [1, 3, clip.height, clip.width]),
        images: floatTensor(this.floatTypes.images, pixels, [1, image.height, image.width, 3]),
      });
      const flag = out.has_nsfw_concepts?.data as ArrayLike<boolean | number> | undefined;
      if (!flag || flag.length < 1) {
        throw new EaselError("model_file", `${this.files.model}: has_nsfw_concepts is empty`);
      }
      flagged.push(Boolean(flag[0]));
    }
    return flagged;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

import onnxProto, { type onnx as OnnxTypes } from "onnx-proto";
import { EaselError } from "../../core/errors.ts";

// onnx-proto is CommonJS; Node's ESM loader cannot see its named export, so take it off the default export.
const { onnx } = onnxProto;

/**
 * Legacy SD 1.x exports (diffusers' convert script, optimum ≤ 1.22) end their VAE encoder with the posterior's
 * draw inside the graph: `latent_sample = mean + exp(0.5 · clamp(logvar)) · RandomNormalLike(mean)`. Those
 * values come from onnxruntime's own generator, not from the seed, and differ from run to run within one
 * session. diffusers draws that sample from the seeded generator (before the noise). So at load easel cuts the
 * graph where the Gaussian's parameters are made (the tensor that is split into mean and logvar) and exposes
 * them as `latent_parameters`, the output optimum ≥ 1.24 exports have; the pipeline then draws the sample as
 * diffusers does, and img2img is the same on every layout and reproducible in a long-lived worker.
 *
 * Cutting the graph rather than re-implementing the draw: the random node's values cannot be seeded from
 * onnxruntime-node, and the parameters are an existing tensor of the graph, so the cut changes no arithmetic.
 */

/** The output name easel gives the exposed parameters (optimum's). */
export const POSTERIOR_PARAMETERS = "latent_parameters";

const RANDOM_OPS = new Set(["RandomNormalLike", "RandomNormal"]);
/** Ops a value passes through unchanged on its way between the split and the final add. */
const PASS_THROUGH = new Set(["Identity", "Cast"]);

/** Whether a model file samples at random inside its graph (cheap: looks for the op's name in the bytes). */
export function drawsInGraph(bytes: Uint8Array): boolean {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return [...RANDOM_OPS].some((op) => buffer.includes(op));
}

/**
 * The VAE encoder `bytes` with its in-graph draw cut away: one output, `latent_parameters` (mean‖logvar on
 * the channel axis). Throws a `model_file` error naming `what` when the graph does not have the shape of
 * diffusers' DiagonalGaussianDistribution.sample.
 */
export function exposePosteriorParameters(bytes: Uint8Array, what: string): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  const nodes = graph?.node ?? [];
  const output = graph?.output?.[0];
  if (!graph || !output?.name) throw unrecognised(what, "it has no output");
  if (graph.initializer?.some((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL)) {
    throw unrecognised(what, "its weights are in an external file");
  }
  const producer = new Map<string, OnnxTypes.INodeProto>();
  for (const node of nodes) for (const out of node.output ?? []) producer.set(out, node);
  const source = (name: string): OnnxTypes.INodeProto | undefined => {
    let node = producer.get(name);
    while (node && PASS_THROUGH.has(node.opType ?? "")) node = producer.get(node.input?.[0] ?? "");
    return node;
  };

  // latent_sample = Add(mean, Mul(std, noise)); mean is the first half of Split(parameters) (torch.chunk).
  const add = source(output.name);
  if (add?.opType !== "Add") throw unrecognised(what, `its ${output.name} is not mean + std · noise`);
  let parameters: string | undefined;
  for (const input of add.input ?? []) {
    const split = source(input);
    if ((split?.opType === "Split" || split?.opType === "Slice") && split.input?.[0]) {
      parameters = split.input[0];
      break;
    }
  }
  if (!parameters) throw unrecognised(what, "no split into mean and log-variance feeds its sample");

  // Only what computes the parameters stays (the random draw and the sum go), and one more node gives them
  // optimum's name as the graph's output.
  const needed = new Set<OnnxTypes.INodeProto>();
  const pending = [parameters];
  for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
    const node = producer.get(name);
    if (!node || needed.has(node)) continue;
    needed.add(node);
    pending.push(...(node.input ?? []).filter((n) => n !== ""));
  }
  // Their constants go too (onnxruntime would warn about each one left unused).
  const used = new Set([...needed].flatMap((node) => node.input ?? []));
  graph.initializer = (graph.initializer ?? []).filter((t) => used.has(t.name ?? ""));
  const elemType = output.type?.tensorType?.elemType ?? onnx.TensorProto.DataType.FLOAT;
  graph.node = [
    ...nodes.filter((node) => needed.has(node)),
    onnx.NodeProto.create({
      opType: "Identity",
      input: [parameters],
      output: [POSTERIOR_PARAMETERS],
      name: "easel_posterior_parameters",
    }),
  ];
  graph.output = [
    onnx.ValueInfoProto.create({
      name: POSTERIOR_PARAMETERS,
      type: { tensorType: { elemType } },
    }),
  ];
  return onnx.ModelProto.encode(model).finish();
}

function unrecognised(what: string, why: string): EaselError {
  return new EaselError(
    "model_file",
    `${what}: its VAE encoder draws latent_sample at random inside the graph, and easel cannot take the ` +
      `draw out to make it follow the seed (${why}). Re-export the model with optimum ≥ 1.24, whose encoder ` +
      "outputs latent_parameters",
  );
}

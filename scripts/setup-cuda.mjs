// `npm run setup:cuda`: adds onnxruntime-node's CUDA 12 execution provider libraries on a GPU host.
// The default install skips this download (.npmrc) because it comes from outside the npm registry.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);
const ortDir = dirname(require.resolve("onnxruntime-node/package.json"));
const binDir = join(ortDir, "bin", "napi-v6", process.platform, process.arch);
const providers = ["libonnxruntime_providers_cuda.so", "libonnxruntime_providers_shared.so"];

if (process.platform !== "linux" || process.arch !== "x64") {
  console.error(
    `setup:cuda: onnxruntime-node ships CUDA support for Linux x64 only (this is ${process.platform}/${process.arch}).`,
  );
  process.exit(1);
}

console.log("setup:cuda: downloading onnxruntime-node's CUDA 12 provider libraries (needs internet access)…");
// ONNXRUNTIME_NODE_INSTALL wins over the project's .npmrc "skip" setting that npm passes down. "1", not "cuda12":
// onnxruntime-node 1.30's install-utils.js parses "cuda12" to nothing (its switch falls off the end), and under
// `npm run` nothing means "a local install, skip"; "1" installs the platform's list, which is CUDA 12 on
// Linux x64.
const result = spawnSync(process.execPath, [join(ortDir, "script", "install.js")], {
  cwd: ortDir,
  stdio: "inherit",
  env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: "1" },
});
const missing = providers.filter((file) => !existsSync(join(binDir, file)));
if (result.status !== 0 || missing.length > 0) {
  console.error(
    `setup:cuda: failed (${missing.length > 0 ? `missing ${missing.join(", ")}` : `exit ${result.status}`}). ` +
      "Check the host can reach the download server, then run `npm run setup:cuda` again.",
  );
  process.exit(1);
}
console.log(
  "setup:cuda: done. The host also needs the NVIDIA driver, CUDA 12 and cuDNN 9 libraries on its library path. " +
    "Set EASEL_DEVICE=cuda (or auto) to use the GPU.",
);

#!/usr/bin/env node
// Builds the kiosk into a static folder: type-check, bundle kiosk.ts with esbuild, copy the page and
// onnxruntime-web's wasm (served from the kiosk's own origin, never a CDN). Uses edge/js's locked
// node_modules (`npm ci` there first) and its built dist (`npm run build`).
//
//     node sample_app/web/build.mjs [--out DIR]     (default: sample_app/web/dist)

import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = path.dirname(fileURLToPath(import.meta.url));
const sdk = path.resolve(here, "../../edge/js");
const { values } = parseArgs({ options: { out: { type: "string", default: path.join(here, "dist") } } });
const out = path.resolve(values.out);

for (const [need, fix] of [
  [path.join(sdk, "node_modules"), "cd edge/js && npm ci"],
  [path.join(sdk, "dist", "index.js"), "cd edge/js && npm run build"],
]) {
  if (!existsSync(need)) {
    process.stderr.write(`${need} is missing: ${fix}\n`);
    process.exit(2);
  }
}
const require = createRequire(path.join(sdk, "package.json"));
try {
  execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", path.join(here, "tsconfig.json")], { stdio: "inherit" });
} catch {
  process.stderr.write("the kiosk does not type-check (errors above)\n");
  process.exit(1);
}
const esbuild = require("esbuild");
await esbuild.build({
  entryPoints: [path.join(here, "kiosk.ts")],
  outfile: path.join(out, "kiosk.js"),
  tsconfig: path.join(here, "tsconfig.json"), // maps @edgeloop/edge to the SDK's built package
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  sourcemap: true,
  logLevel: "warning",
});
mkdirSync(path.join(out, "ort"), { recursive: true });
for (const file of ["index.html", "kiosk.css"]) copyFileSync(path.join(here, file), path.join(out, file));
// What onnxruntime-web/wasm loads at run time from `wasmPaths`: the single-threaded-capable wasm and its glue.
for (const file of ["ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs"]) {
  copyFileSync(path.join(sdk, "node_modules", "onnxruntime-web", "dist", file), path.join(out, "ort", file));
}
process.stdout.write(`kiosk built in ${out}\n`);

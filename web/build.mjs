// Builds the app into dist/: one fingerprinted script and stylesheet under dist/assets/ (each
// with its gzip beside it, which the gateway sends to browsers that take it) and an index.html
// that names them, so the assets can be cached forever and index.html never.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

const out = new URL("./dist/", import.meta.url);
rmSync(out, { recursive: true, force: true });
mkdirSync(new URL("assets/", out), { recursive: true });

const result = await esbuild.build({
  entryPoints: { app: "src/main.tsx" },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome110", "firefox110", "safari16"],
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "none",
  write: false,
  outdir: "dist/assets",
  logLevel: "warning",
});

const names = {};
let total = 0;
for (const file of result.outputFiles) {
  const ext = file.path.endsWith(".css") ? "css" : "js";
  const hash = createHash("sha256").update(file.contents).digest("hex").slice(0, 12);
  const name = `app-${hash}.${ext}`;
  const gzip = gzipSync(file.contents, { level: 9 });
  writeFileSync(new URL(`assets/${name}`, out), file.contents);
  writeFileSync(new URL(`assets/${name}.gz`, out), gzip);
  names[ext] = name;
  total += gzip.length;
}

const page = readFileSync(new URL("./src/index.html", import.meta.url), "utf8")
  .replace("%SCRIPT%", `/assets/${names.js}`)
  .replace("%STYLE%", `/assets/${names.css}`);
writeFileSync(new URL("index.html", out), page);
console.log(`web/dist: ${names.js}, ${names.css}; ${(total / 1024).toFixed(1)} KB gzip`);

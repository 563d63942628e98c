// A require hook for .ts files, like ts-node/register/transpile-only, that keeps each file's
// transpiled output in a cache directory ($SCM_TS_TRANSPILE_CACHE, keyed by the file's path and
// content): git starts the credential helper once per action, and after the first start the helper
// loads from the cache without loading the TypeScript compiler (about a second per start on a busy
// machine). It always runs the current sources: a changed file has another key.
"use strict";
const { createHash } = require("node:crypto");
const { mkdirSync, readFileSync, renameSync, writeFileSync } = require("node:fs");
const { join } = require("node:path");

const cacheDir = process.env.SCM_TS_TRANSPILE_CACHE;
if (!cacheDir) throw new Error("transpile-cache.js: set SCM_TS_TRANSPILE_CACHE to a directory");
mkdirSync(cacheDir, { recursive: true });

// The project's tsconfig.json options that matter for emitting CommonJS.
const compilerOptions = {
  module: 1 /* CommonJS */,
  target: 9 /* ES2022 */,
  esModuleInterop: true,
  experimentalDecorators: true,
  emitDecoratorMetadata: true,
  useDefineForClassFields: false,
};
let ts;

require.extensions[".ts"] = function loadTs(module, filename) {
  const source = readFileSync(filename, "utf8");
  const key = createHash("sha256").update(filename).update("\0").update(source).digest("hex");
  const cached = join(cacheDir, `${key}.js`);
  let code;
  try {
    code = readFileSync(cached, "utf8");
  } catch {
    ts ??= require("typescript");
    code = ts.transpileModule(source, { compilerOptions, fileName: filename }).outputText;
    const temp = `${cached}.${process.pid}`;
    writeFileSync(temp, code);
    renameSync(temp, cached); // atomic: concurrent helpers never read half a file
  }
  module._compile(code, filename);
};

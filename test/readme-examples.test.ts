import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { expect } from "chai";
import ts from "typescript";

/*
 * Every ```ts block of README.md and docs/*.md is type-checked as its own module, exactly as a
 * consumer would write it: imports of "scm-token-service" and "scm-token-service/testing" resolve
 * (through `paths`) to src/index.ts and src/testing/index.ts, everything else (chai, typeorm,
 * inversify, …) to this project's node_modules, with the project's compiler options. A block whose
 * first line is `// not compiled` is skipped (fragments, pseudo-code). A block with top-level
 * `await` is checked as an ES module (.mts); the others as CommonJS, like this package.
 *
 * The blocks are served from memory by the compiler host, as files under `<root>/.readme-examples/`
 * that never touch the disk, so module resolution sees this project's node_modules and nothing is
 * left behind in the tree. All blocks go into one program (one type-check of src/ for all of them).
 */

const ROOT = resolve(__dirname, "..");
const VIRTUAL_DIR = join(ROOT, ".readme-examples");

export interface CodeBlock {
  /** The Markdown file, relative to the project root. */
  source: string;
  /** 1-based line of the block's first code line in the Markdown file. */
  firstLine: number;
  code: string;
}

/** The ```ts / ```typescript blocks of a Markdown text, without the ones marked `// not compiled`. */
export function extractTsBlocks(markdown: string, source: string): CodeBlock[] {
  const lines = markdown.split(/\r?\n/);
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(ts|typescript)\s*$/.exec(lines[i]);
    if (!open) continue;
    const indent = open[1].length;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j]); j++) body.push(lines[j].slice(Math.min(indent, lines[j].length - lines[j].trimStart().length)));
    if (body[0]?.trim() !== "// not compiled") blocks.push({ source, firstLine: i + 2, code: body.join("\n") });
    i = j;
  }
  return blocks;
}

/** README.md and docs/*.md of the project (whichever exist). */
export function documentationFiles(root = ROOT): string[] {
  const files = existsSync(join(root, "README.md")) ? [join(root, "README.md")] : [];
  const docs = join(root, "docs");
  if (existsSync(docs)) files.push(...readdirSync(docs).filter((f) => f.endsWith(".md")).sort().map((f) => join(docs, f)));
  return files;
}

/** Top-level `await` (at column 0) needs an ES module. */
function hasTopLevelAwait(code: string): boolean {
  return code.split("\n").some((line) => /^\S/.test(line) && /(^|[=(\s])await\s/.test(line));
}

/**
 * Type-checks the blocks in one program. Returns one line per problem, `README.md:57:5 - error
 * TS2345: …`, with the position in the Markdown file.
 */
export function typeCheckBlocks(blocks: CodeBlock[]): string[] {
  const configFile = ts.readConfigFile(join(ROOT, "tsconfig.json"), (path) => ts.sys.readFile(path));
  if (configFile.error) throw new Error(ts.flattenDiagnosticMessageText(configFile.error.messageText, "\n"));
  const parsed = ts.parseJsonConfigFileContent(configFile.config, ts.sys, ROOT);
  const options: ts.CompilerOptions = {
    ...parsed.options,
    noEmit: true,
    declaration: false,
    sourceMap: false,
    paths: {
      "scm-token-service": [join(ROOT, "src/index.ts")],
      "scm-token-service/testing": [join(ROOT, "src/testing/index.ts")],
    },
  };

  const virtual = new Map<string, { block: CodeBlock; text: string }>();
  blocks.forEach((block, index) => {
    const name = `${block.source.replace(/[^A-Za-z0-9]+/g, "_")}_L${block.firstLine}_${index}${hasTopLevelAwait(block.code) ? ".mts" : ".ts"}`;
    // `export {}` at the end (not the start: line numbers stay) makes a block without imports a module too.
    virtual.set(join(VIRTUAL_DIR, name), { block, text: `${block.code}\nexport {};\n` });
  });

  const host = ts.createCompilerHost(options, true);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (path) => virtual.has(path) || fileExists.call(host, path);
  host.readFile = (path) => virtual.get(path)?.text ?? readFile.call(host, path);
  host.getSourceFile = (path, languageVersion, onError, shouldCreate) => {
    const entry = virtual.get(path);
    return entry ? ts.createSourceFile(path, entry.text, languageVersion, true) : getSourceFile.call(host, path, languageVersion, onError, shouldCreate);
  };

  const program = ts.createProgram({ rootNames: [...virtual.keys()], options, host });
  const problems: string[] = [];
  for (const [path, { block }] of virtual) {
    const sourceFile = program.getSourceFile(path)!;
    const diagnostics = [...program.getSyntacticDiagnostics(sourceFile), ...program.getSemanticDiagnostics(sourceFile)];
    for (const d of diagnostics) {
      const { line, character } = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : { line: 0, character: 0 };
      problems.push(`${block.source}:${block.firstLine + line}:${character + 1} - error TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
    }
  }
  return problems;
}

describe("code examples in README.md and docs/*.md", function () {
  this.timeout(60_000);
  const blocks = documentationFiles().flatMap((file) => extractTsBlocks(readFileSync(file, "utf8"), relative(ROOT, file)));
  const BROKEN = [
    "# A broken example",
    "",
    "```ts",
    'import { createTokenService } from "scm-token-service";',
    'createTokenService({ providers: [], encryptionKeys: "not an array" });',
    "```",
    "",
    "```ts",
    "// not compiled",
    "this is not TypeScript",
    "```",
  ].join("\n");
  const broken = extractTsBlocks(BROKEN, "broken.md");
  let problems: string[];

  before(() => {
    // One program for the documentation's blocks and the deliberately broken one.
    problems = typeCheckBlocks([...blocks, ...broken]);
  });

  it("there are examples to check", () => {
    expect(blocks.length, "no ```ts block found in README.md or docs/*.md").to.be.greaterThan(0);
  });

  it("every example type-checks against the public API (problems are listed as file:line:column)", () => {
    const ours = problems.filter((p) => !p.startsWith("broken.md:"));
    expect(ours, `\n${ours.join("\n")}\n`).to.deep.equal([]);
  });

  it("the check itself: a broken example fails with its Markdown file and line, and `// not compiled` blocks are skipped", () => {
    expect(broken).to.have.length(1);
    const reported = problems.filter((p) => p.startsWith("broken.md:"));
    expect(reported).to.have.length(1);
    expect(reported[0]).to.match(/^broken\.md:5:\d+ - error TS2322: Type 'string' is not assignable to type 'EncryptionKey\[\]'/);
  });
});

import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { expect } from "chai";
import ts from "typescript";
import { Registry } from "prom-client";
import { TokenMetrics } from "../src/metrics/token-metrics";

/*
 * The documentation must stand on its own: a user reads README.md, docs/*.md, the TypeDoc site and
 * the doc comments in the sources, and every reference there must lead somewhere the user has.
 * Design notes, research files, issue numbers and seed files of the project's own history do not
 * ship, so nothing may point at them; every relative Markdown link must name a file (and heading)
 * inside this repository; and every page in docs/ must be part of the TypeDoc site.
 */

const ROOT = resolve(__dirname, "..");

/** Places that exist on a developer's machine but never in the repository or the package. */
const UNSHIPPED_PATHS: readonly RegExp[] = [/\.\.\/shared\b/, /\bDESIGN\.md\b/, /\bseeds?\//, /\bresearch\/[\w.-]*/];

/** References to the project's history that mean nothing to a user (doc comments and docs/ only). */
const HISTORY_REFERENCES: readonly RegExp[] = [
  /\bseeds? \d{3}\b/i, // "seed 004"
  /\bissues? #\d+/i, // "issue #9" (upstream issues are cited as owner/repo#N or with their host)
  /\bresearch §/i,
  /(?<!RFC \d{3,4} )§\s?\d/, // a bare section number of an unshipped document; "RFC 6749 §6" is fine
];

/** Generated or installed trees: a link into them is not a link into the repository's sources. */
const NOT_SOURCES = ["node_modules", "dist", join("docs", "api")];

function walk(dir: string, accept: (file: string) => boolean): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const rel = relative(ROOT, path);
    if (NOT_SOURCES.includes(rel)) continue;
    if (statSync(path).isDirectory()) out.push(...walk(path, accept));
    else if (accept(path)) out.push(path);
  }
  return out;
}

const rel = (file: string) => relative(ROOT, file).split(sep).join("/");
const lineOf = (text: string, index: number) => text.slice(0, index).split("\n").length;

function findings(file: string, text: string, patterns: readonly RegExp[], offset = 0, whole = text): string[] {
  const out: string[] = [];
  for (const pattern of patterns) {
    const global = new RegExp(pattern.source, pattern.flags.includes("g") ? pattern.flags : pattern.flags + "g");
    for (const m of text.matchAll(global)) out.push(`${rel(file)}:${lineOf(whole, offset + m.index)}: "${m[0]}"`);
  }
  return out;
}

/** Every comment of a TypeScript file, with its offset (parsed, so regex and string literals are not mistaken for comments). */
export function commentsOf(fileName: string, text: string): { pos: number; text: string }[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const seen = new Map<number, string>();
  const collect = (ranges: ts.CommentRange[] | undefined) => {
    for (const r of ranges ?? []) seen.set(r.pos, text.slice(r.pos, r.end));
  };
  const visit = (node: ts.Node) => {
    collect(ts.getLeadingCommentRanges(text, node.getFullStart()));
    collect(ts.getTrailingCommentRanges(text, node.getEnd()));
    node.forEachChild(visit);
  };
  visit(source);
  collect(ts.getLeadingCommentRanges(text, source.endOfFileToken.getFullStart()));
  return [...seen.entries()].sort(([a], [b]) => a - b).map(([pos, comment]) => ({ pos, text: comment }));
}

/** Markdown without fenced code blocks and inline code spans (replaced by spaces, so offsets stay). */
export function proseOf(markdown: string): string {
  const blank = (s: string) => s.replace(/[^\n]/g, " ");
  return markdown.replace(/^( {0,3})(```|~~~)[^\n]*\n[\s\S]*?^\1\2[^\n]*$/gm, blank).replace(/`[^`\n]*`/g, blank);
}

/** Link targets of a Markdown text: inline links and images, and reference definitions. */
export function linkTargets(markdown: string): { target: string; index: number }[] {
  const prose = proseOf(markdown);
  const out: { target: string; index: number }[] = [];
  for (const m of prose.matchAll(/!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push({ target: m[1], index: m.index });
  for (const m of prose.matchAll(/^ {0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)) out.push({ target: m[1], index: m.index });
  return out;
}

/** GitHub's heading anchors ("## The decision table" → "the-decision-table"; repeats get -1, -2, …). */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const counts = new Map<string, number>();
  for (const m of proseOf(markdown).replace(/`/g, " ").matchAll(/^ {0,3}#{1,6}[ \t]+(.*?)[ \t#]*$/gm)) {
    // Use the original heading text (code spans included), as GitHub does.
    const original = markdown.slice(m.index, m.index + m[0].length).replace(/^ {0,3}#{1,6}[ \t]+/, "").replace(/[ \t#]*$/, "");
    const text = original.replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1");
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const n = counts.get(base) ?? 0;
    counts.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** "docs/*.md"-style globs: `*` within one path segment, `**` across segments. */
function globToRegExp(glob: string): RegExp {
  const body = glob
    .split("**")
    .map((part) => part.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]"))
    .join(".*");
  return new RegExp(`^${body}$`);
}

const MARKDOWN = [join(ROOT, "README.md"), ...walk(join(ROOT, "docs"), (f) => f.endsWith(".md"))];
const DOCS = walk(join(ROOT, "docs"), (f) => f.endsWith(".md"));
const SOURCES = ["src", "bench", "migrations"].flatMap((dir) => walk(join(ROOT, dir), (f) => f.endsWith(".ts")));

describe("documentation is self-contained", () => {
  it("finds the files it checks", () => {
    expect(DOCS.map(rel)).to.include.members(["docs/how-it-works.md", "docs/scm-behaviour.md", "docs/metrics.md", "docs/stack-notes.md", "docs/testing-kit.md"]);
    expect(SOURCES.length).to.be.greaterThan(50);
    expect(SOURCES.map(rel)).to.include("src/refresh-policy.ts");
  });

  it("README.md, docs/ and typedoc.json point at nothing outside the repository (../shared, DESIGN.md, seeds/, research/)", () => {
    const problems = [...MARKDOWN, join(ROOT, "typedoc.json")].flatMap((file) => findings(file, readFileSync(file, "utf8"), UNSHIPPED_PATHS));
    expect(problems, problems.join("\n")).to.deep.equal([]);
  });

  it("docs/ cites no seeds, issue numbers or research sections", () => {
    const problems = DOCS.flatMap((file) => findings(file, readFileSync(file, "utf8"), HISTORY_REFERENCES));
    expect(problems, problems.join("\n")).to.deep.equal([]);
  });

  it("source files (src/, bench/, migrations/) name no unshipped file, and their comments cite no seeds, issue numbers or research sections", () => {
    const problems = SOURCES.flatMap((file) => {
      const text = readFileSync(file, "utf8");
      const inComments = commentsOf(file, text).flatMap((c) => findings(file, c.text, HISTORY_REFERENCES, c.pos, text));
      return [...findings(file, text, UNSHIPPED_PATHS), ...inComments];
    });
    expect(problems, problems.join("\n")).to.deep.equal([]);
  });

  it("every relative link in README.md and docs/*.md names a file inside the repository, and an existing heading", () => {
    const problems: string[] = [];
    for (const file of MARKDOWN) {
      const markdown = readFileSync(file, "utf8");
      for (const { target, index } of linkTargets(markdown)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, …
        const where = `${rel(file)}:${lineOf(markdown, index)}: ${target}`;
        const [pathPart, anchor] = target.split("#", 2) as [string, string | undefined];
        const resolved = pathPart === "" ? file : resolve(dirname(file), decodeURIComponent(pathPart));
        const inside = relative(ROOT, resolved);
        if (inside.startsWith("..") || resolve(ROOT, inside) !== resolved) {
          problems.push(`${where} (outside the repository)`);
          continue;
        }
        if (NOT_SOURCES.some((dir) => inside === dir || inside.startsWith(dir + sep))) {
          problems.push(`${where} (a generated or installed file)`);
          continue;
        }
        if (!existsSync(resolved)) {
          problems.push(`${where} (no such file)`);
          continue;
        }
        if (anchor !== undefined && resolved.endsWith(".md") && !headingAnchors(readFileSync(resolved, "utf8")).has(anchor)) {
          problems.push(`${where} (no heading with that anchor)`);
        }
      }
    }
    expect(problems, problems.join("\n")).to.deep.equal([]);
  });

  it("typedoc.json includes every page of docs/ in the API site (projectDocuments)", () => {
    const config = JSON.parse(readFileSync(join(ROOT, "typedoc.json"), "utf8")) as { projectDocuments?: string[]; out?: string };
    const patterns = (config.projectDocuments ?? []).map(globToRegExp);
    const missing = DOCS.map(rel).filter((doc) => !patterns.some((p) => p.test(doc)));
    expect(missing, `add these to typedoc.json "projectDocuments": ${missing.join(", ")}`).to.deep.equal([]);
    // The generated site must not end up inside what projectDocuments reads.
    expect(config.out, "TypeDoc's output directory").to.be.a("string");
    expect(DOCS.some((doc) => rel(doc).startsWith(`${config.out}/`)), "a generated page counted as a doc").to.equal(false);
  });

  it("every metric the library registers is documented in docs/metrics.md", () => {
    // Read from a registry the library registered on, not from the source: no metric escapes by its spelling.
    const registry = new Registry();
    const metrics = new TokenMetrics(registry);
    const names = registry.getMetricsAsArray().map((m) => (m as unknown as { name: string }).name);
    metrics.release();
    expect(names.length, "metrics the library registers").to.be.greaterThan(5);
    const doc = readFileSync(join(ROOT, "docs/metrics.md"), "utf8");
    const undocumented = names.filter((name) => !doc.includes(`\`${name}\``));
    expect(undocumented, "metrics missing from docs/metrics.md").to.deep.equal([]);
  });

  // README.md ships in the package and links to docs/: without them those links are dead for everyone
  // who reads the README from npm.
  it("every page of docs/ ships in the npm package (package.json \"files\")", () => {
    const out = execFileSync(process.platform === "win32" ? "npm.cmd" : "npm", ["pack", "--dry-run", "--json", "--ignore-scripts", "--loglevel=error"], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
    const packed = new Set((JSON.parse(out) as { files: { path: string }[] }[])[0].files.map((f) => f.path));
    const missing = DOCS.map(rel).filter((doc) => !packed.has(doc));
    expect(missing, "docs/ pages not in the package").to.deep.equal([]);
  });
});

describe("documentation checks: the checkers themselves", () => {
  it("find a path outside the repository, a missing file, a missing heading and a bare section number", () => {
    const md = "See [x](../shared/research/a.md), [y](docs/nope.md), [z](#nowhere) and `[code](ignored.md)`.\n\n```md\n[fenced](ignored.md)\n```\n\n[ref]: docs/also-nope.md\n";
    expect(linkTargets(md).map((l) => l.target)).to.deep.equal(["../shared/research/a.md", "docs/nope.md", "#nowhere", "docs/also-nope.md"]);
    expect(findings("x.md", md, UNSHIPPED_PATHS)).to.have.length(2); // ../shared and research/a.md
    expect(findings("x.ts", "// see §1.4 and seed 004 and issue #9; RFC 6749 §6 is fine", HISTORY_REFERENCES)).to.have.length(3);
  });

  it("computes GitHub heading anchors", () => {
    const anchors = headingAnchors("# How it works\n## The decision table\n### `opportunisticRefresh` label\n## The decision table\n```\n# not a heading\n```\n");
    expect([...anchors]).to.deep.equal(["how-it-works", "the-decision-table", "opportunisticrefresh-label", "the-decision-table-1"]);
  });

  it("reads comments, not strings or regular expressions", () => {
    const code = 'const a = "// issue #1 in a string"; const r = /seed 004/; /** seed 000 */ const b = 1; // issue #2\n';
    expect(commentsOf("x.ts", code).map((c) => c.text)).to.deep.equal(["/** seed 000 */", "// issue #2"]);
  });
});

import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";

// docs/testing-kit.md shows test/examples/consumer.test.ts as a user would write it: the same file,
// with the package's import paths instead of the repository's. Keep the two from drifting apart.

const root = join(__dirname, "..", "..");

/** consumer.test.ts as it appears in the docs: "// In your project:" lines dropped, package paths in. */
function asPublished(source: string): string {
  return source
    .split("\n")
    .filter((line) => !line.startsWith("// In your project:"))
    .join("\n")
    .replace('"../../src/index"', '"scm-token-service"')
    .replace('"../../src/testing/create-test-token-service"', '"scm-token-service/testing"')
    .trimEnd();
}

describe("docs/testing-kit.md", () => {
  it("shows test/examples/consumer.test.ts, complete, with the package's import paths", () => {
    const doc = readFileSync(join(root, "docs", "testing-kit.md"), "utf8");
    const section = doc.slice(doc.indexOf("## A complete example"));
    const block = /```ts\n([\s\S]*?)\n```/.exec(section)?.[1];
    const source = readFileSync(join(__dirname, "consumer.test.ts"), "utf8");
    expect(block, "the example's code block").to.be.a("string");
    expect(block).to.equal(asPublished(source));
    // Each "// In your project:" comment names the import it replaces.
    for (const line of source.split("\n").filter((l) => l.startsWith("// In your project:"))) {
      expect(block).to.contain(line.replace("// In your project: ", ""));
    }
  });
});

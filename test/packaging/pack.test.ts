import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { expect } from "chai";
import { scmTokenServiceMigrations } from "../../migrations";
import { npm, packedLibrary, ROOT, sh, TSC } from "./packed-tarball";

/*
 * The published package, as a consumer gets it: build, `npm pack` (packed-tarball.ts), install the
 * tarball into a fresh project with sql.js (an optional peer: the embedded database these scripts
 * use), then use it from CommonJS, from ESM, from TypeScript and through its `bin`.
 *
 * Installing: `npm install --offline` from the local npm cache (warm, because this project was
 * installed), else `--prefer-offline`, else the tarball is extracted into
 * node_modules/scm-token-service with its runtime and peer dependencies symlinked from this
 * project's node_modules. The path taken is printed. PACK_TEST_INSTALL=extract forces the last way
 * (a machine without an npm cache); PACK_TEST_INSTALL=prefer-offline starts with the second.
 * Other majors of the peers are tried by consumers.test.ts.
 */

const CJS = `
const { randomBytes } = require("node:crypto");
const { createTokenService } = require("scm-token-service");
const { FakeClock, FakeScmServer, providerForFakeScm } = require("scm-token-service/testing");

(async () => {
  const clock = new FakeClock("2026-01-01T00:00:00Z");
  const scm = await FakeScmServer.start({ profile: "bitbucket_dc", clock });
  const service = await createTokenService({ providers: [providerForFakeScm(scm)], encryptionKeys: [{ id: "k1", key: randomBytes(32).toString("base64") }], clock });
  try {
    const issued = scm.issueTokens({ userId: "alice" });
    await service.storeToken("alice", "bitbucket.example.com", { value: issued.accessToken, refreshToken: issued.refreshToken, expiryDate: issued.expiresAt, scopes: issued.scopes });
    const first = await service.getTokenForHost("alice", "bitbucket.example.com");
    clock.advanceMinutes(58); // the token cannot cover 5 more minutes: a refresh at the fake SCM
    const second = await service.getTokenForHost("alice", "bitbucket.example.com");
    console.log("cjs: handed out " + (first.value === issued.accessToken) + ", refreshed " + (second.value !== first.value) + ", live " + scm.isAccessTokenLive(second.value) + ", SCM refreshes " + scm.counters.refreshSuccesses);
  } finally {
    await service.close();
    await scm.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
`;

const ESM = `
import { createTokenService, KeyRing } from "scm-token-service";
import { createTestTokenService, FakeScmServer, providerForFakeScm } from "scm-token-service/testing";
import { randomBytes } from "node:crypto";

const scm = await FakeScmServer.start({ profile: "gitlab" });
const service = await createTokenService({ providers: [providerForFakeScm(scm)], encryptionKeys: [{ id: "k1", key: randomBytes(32).toString("base64") }] });
const issued = scm.issueTokens({ userId: "bob", scopes: ["api"] });
await service.storeToken("bob", "gitlab.example.com", { value: issued.accessToken, refreshToken: issued.refreshToken, expiryDate: issued.expiresAt, scopes: issued.scopes });
const token = await service.getTokenForWorkspaceStart("bob", "gitlab.example.com");
await service.close();
await scm.close();

const kit = await createTestTokenService();
await kit.connectUser("carol");
const kitToken = await kit.service.getTokenForHost("carol", kit.host);
await kit.close();
console.log("esm: handed out " + (token.value === issued.accessToken) + ", reserved " + (token.reservedUntilDate > new Date()) + ", kit " + (kitToken !== undefined) + ", KeyRing " + (typeof KeyRing));
`;

const TYPED = `
import { createTokenService, TokenService, type Token, type TokenServiceOptions } from "scm-token-service";
import { createTestTokenService, type TestTokenService } from "scm-token-service/testing";

export async function typed(options: TokenServiceOptions): Promise<Token | undefined> {
  const service: TokenService = await createTokenService(options);
  const kit: TestTokenService = await createTestTokenService({ flags: { opportunisticRefresh: true } });
  await kit.close();
  return service.getTokenForHost("user-1", "bitbucket.example.com", { lifetimeMinutes: 10 });
}
`;

describe("the published package (npm pack → install → use)", function () {
  this.timeout(120_000);
  let work: string;
  let consumer: string;
  let files: string[];
  let installPath: string;

  before(async function () {
    const library = await packedLibrary();
    files = library.files;
    work = mkdtempSync(join(tmpdir(), "scm-token-pack-consumer-"));
    consumer = join(work, "consumer");
    mkdirSync(consumer);
    writeFileSync(join(consumer, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true }));
    installPath = await install(library.tarball, consumer);
    console.log(`      (installed with: ${installPath})`);
  });

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  describe("the tarball", () => {
    it("holds the compiled library, its typings, the testing kit, the CLI, the migrations, README and LICENSE", () => {
      expect(files).to.include.members([
        "package.json",
        "LICENSE",
        "dist/src/index.js",
        "dist/src/index.d.ts",
        "dist/src/testing/index.js",
        "dist/src/testing/index.d.ts",
        "dist/src/cli/main.js",
        "dist/src/demo/demo.js",
        "dist/src/simulation/run-simulation.js",
        "dist/migrations/index.js",
      ]);
      if (existsSync(join(ROOT, "README.md"))) expect(files).to.include("README.md");
    });

    it("holds no tests, benchmarks, TypeScript sources (only .d.ts), environment files or keys", () => {
      const offending = files.filter(
        (f) =>
          /^(dist\/)?(test|bench)\//.test(f) ||
          /^src\//.test(f) ||
          (f.endsWith(".ts") && !f.endsWith(".d.ts")) ||
          /(^|\/)\.env(\.|$)/.test(f) ||
          /\.(pem|key|p12|pfx|tgz)$/.test(f) ||
          /(^|\/)(keys?|secrets?)\.json$/i.test(f) ||
          /(^|\/)\.npmrc$/.test(f),
      );
      expect(offending).to.deep.equal([]);
    });

    it("the CLI entry starts with a node shebang", () => {
      const main = readFileSync(join(consumer, "node_modules/scm-token-service/dist/src/cli/main.js"), "utf8");
      expect(main.split("\n")[0]).to.equal("#!/usr/bin/env node");
    });
  });

  describe("in a fresh project", () => {
    it('works from CommonJS: require("scm-token-service") and require("scm-token-service/testing")', async () => {
      writeFileSync(join(consumer, "consumer.cjs"), CJS);
      const { stdout } = await sh(process.execPath, ["consumer.cjs"], consumer);
      expect(stdout.trim()).to.equal("cjs: handed out true, refreshed true, live true, SCM refreshes 1");
    });

    it('works from ESM: import { createTokenService } from "scm-token-service"', async () => {
      writeFileSync(join(consumer, "consumer.mjs"), ESM);
      const { stdout } = await sh(process.execPath, ["consumer.mjs"], consumer);
      expect(stdout.trim()).to.equal("esm: handed out true, reserved true, kit true, KeyRing function");
    });

    it("type-checks from TypeScript (module node20), as CommonJS and as ESM", async () => {
      writeFileSync(join(consumer, "typed.cts"), TYPED);
      writeFileSync(join(consumer, "typed.mts"), TYPED);
      writeFileSync(
        join(consumer, "tsconfig.json"),
        JSON.stringify({ compilerOptions: { module: "node20", target: "ES2022", strict: true, noEmit: true, skipLibCheck: true, types: [], typeRoots: [] }, files: ["typed.cts", "typed.mts"] }),
      );
      const result = await sh(process.execPath, [TSC, "-p", "."], consumer).catch((e: { stdout: string }) => ({ stdout: e.stdout, failed: true }));
      expect(result.stdout, "tsc errors").to.equal("");
    });

    it("installs the scm-token-service command (package.json bin), whose --help and migrate run work", async () => {
      const bin = join(consumer, "node_modules/.bin/scm-token-service");
      expect(existsSync(bin), 'package.json needs "bin": { "scm-token-service": "dist/src/cli/main.js" }').to.equal(true);
      const help = await sh(bin, ["--help"], consumer);
      expect(help.stdout).to.include("Usage: scm-token-service").and.include("rotate-keys");
      const migrated = await sh(bin, ["migrate", "run", "--database-url", `sqljs:${join(consumer, "tokens.sqlite")}`], consumer);
      expect(migrated.stdout).to.include(`Applied ${scmTokenServiceMigrations.length} migration(s)`);
    });
  });
});

/** Installs the tarball; returns which way worked (see the comment at the top). */
async function install(tarball: string, consumer: string): Promise<string> {
  const forced = process.env.PACK_TEST_INSTALL;
  const modes = forced === "extract" ? [] : forced === "prefer-offline" ? ["--prefer-offline"] : ["--offline", "--prefer-offline"];
  for (const mode of modes) {
    try {
      await npm(["install", mode, tarball, `sql.js@${rootVersion("sql.js")}`], consumer, 45_000);
      return `npm install ${mode}`;
    } catch {
      // try the next way
    }
  }
  const target = join(consumer, "node_modules", "scm-token-service");
  mkdirSync(target, { recursive: true });
  await sh("tar", ["-xzf", tarball, "-C", target, "--strip-components=1"], consumer);
  const pkg = JSON.parse(readFileSync(join(target, "package.json"), "utf8")) as { dependencies?: Record<string, string>; peerDependencies?: Record<string, string>; bin?: Record<string, string> };
  const peers = Object.keys(pkg.peerDependencies ?? {}).filter((dep) => existsSync(join(ROOT, "node_modules", dep)));
  for (const dep of [...Object.keys(pkg.dependencies ?? {}), ...peers]) {
    const link = join(consumer, "node_modules", dep);
    mkdirSync(resolve(link, ".."), { recursive: true });
    symlinkSync(join(ROOT, "node_modules", dep), link, "dir");
  }
  mkdirSync(join(consumer, "node_modules", ".bin"), { recursive: true });
  for (const [name, file] of Object.entries(pkg.bin ?? {})) {
    chmodSync(join(target, file), 0o755); // as npm install does for a package's bin
    symlinkSync(join(target, file), join(consumer, "node_modules", ".bin", name));
  }
  return "extracted tarball + dependencies and peers symlinked from this project's node_modules";
}

function rootVersion(dep: string): string {
  return (JSON.parse(readFileSync(join(ROOT, "node_modules", dep, "package.json"), "utf8")) as { version: string }).version;
}

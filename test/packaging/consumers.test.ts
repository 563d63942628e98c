import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { createConnection } from "mysql2/promise";
import { adminQuery, createDatabaseSql, dbKinds, dropDatabaseSql, POSTGRES_SERVER_URL, SERVER_URL } from "../support/databases";
import { APP_CORE_TS, APP_DI_TS, COMMON_TS, KIT_TEST_TS } from "./consumer-sources";
import { npm, packedLibrary, sh, TSC, type PackedLibrary } from "./packed-tarball";

/*
 * Apps built on the majors of the peer dependencies that the package.json ranges promise: each
 * project installs the packed library with `npm install <tarball> <its versions>` (so npm resolves
 * the peers as for a user), compiles a TypeScript app that adds the library's entities and
 * migrations to its own DataSource (sql.js, MariaDB or PostgreSQL), and runs it with createTokenService or with
 * its own inversify container.
 *
 * Installing from the registry takes a minute, so each project's node_modules is cached in
 * $TMPDIR/scm-token-service-consumers, keyed by its versions and the library's dependency ranges;
 * every run hard-links a copy and puts the freshly packed library into it. A cold cache (a new
 * machine) installs the projects in parallel; CONSUMER_CACHE=off reinstalls.
 */

interface AppRun {
  app: "core" | "di";
  /** mariadb falls back to sqljs when DB_KINDS has no mariadb; postgres runs only when DB_KINDS has postgres. */
  database: "sqljs" | "mariadb" | "postgres";
}

interface ConsumerProject {
  name: string;
  /** Exact versions: the compatibility table of the README names them. */
  install: string[];
  runs: AppRun[];
  expected: { typeorm: string; promClient: string; inversify?: string };
  /** Packages the install must not bring (optional peers the project did not ask for). */
  absent?: string[];
  /** Also runs a kit test with mocha + tsx. */
  kitTest?: boolean;
  /**
   * Type-checks and compiles the app with this repository's TypeScript 6, else with TypeScript 7
   * (the first project's that installs it): tsc 7 takes 1.5 s where tsc 6 takes 14 s.
   */
  typescript: 6 | 7;
}

const COMMON = ["mysql2@3.24.6", "@types/node@20.19.43"];
/** The PostgreSQL driver, in the oldest and the newest TypeORM major's apps. */
const PG = "pg@8.23.1";
const PROJECTS: ConsumerProject[] = [
  {
    name: "typeorm 0.3.20 + inversify 6 + prom-client 14",
    install: ["typeorm@0.3.20", "inversify@6.2.2", "prom-client@14.2.0", "sql.js@1.16.0", PG, ...COMMON],
    runs: [{ app: "core", database: "sqljs" }, { app: "di", database: "mariadb" }, { app: "core", database: "postgres" }],
    expected: { typeorm: "0.3.20", promClient: "14.2.0", inversify: "6.2.2" },
    typescript: 6,
  },
  {
    name: "typeorm 0.3.31 + inversify 7",
    install: ["typeorm@0.3.31", "inversify@7.8.0", "prom-client@15.1.3", "sql.js@1.16.0", ...COMMON],
    runs: [{ app: "core", database: "mariadb" }, { app: "di", database: "sqljs" }],
    expected: { typeorm: "0.3.31", promClient: "15.1.3", inversify: "7.8.0" },
    typescript: 7,
  },
  {
    name: "typeorm 1.1.1 + inversify 8, TypeScript 7, tests on mocha + tsx",
    install: ["typeorm@1.1.1", "inversify@8.2.3", "prom-client@15.1.3", "sql.js@1.16.0", PG, ...COMMON, "typescript@7.0.2", "tsx@4.23.15", "mocha@12.0.3", "@types/mocha@10.0.10"],
    runs: [{ app: "core", database: "sqljs" }, { app: "di", database: "mariadb" }, { app: "di", database: "postgres" }],
    expected: { typeorm: "1.1.1", promClient: "15.1.3", inversify: "8.2.3" },
    kitTest: true,
    typescript: 7,
  },
  {
    name: "npm install scm-token-service mysql2 (peers typeorm and prom-client installed by npm)",
    install: COMMON,
    runs: [{ app: "core", database: "mariadb" }],
    expected: { typeorm: "1.", promClient: "15." },
    absent: ["sql.js", "inversify", "pg"],
    typescript: 7,
  },
];

const CACHE = join(tmpdir(), "scm-token-service-consumers");

describe("consumers of the packed library, on the peer dependencies' majors they bring", function () {
  this.timeout(120_000);
  let library: PackedLibrary;
  let work: string;
  const dirs = new Map<ConsumerProject, string>();
  const builds = new Map<ConsumerProject, Promise<void>>();
  const reports = new Map<AppRun, Promise<Record<string, unknown>>>();

  before(async function () {
    this.timeout(420_000);
    library = await packedLibrary();
    work = mkdtempSync(join(tmpdir(), "scm-token-consumers-"));
    const started = Date.now();
    await Promise.all(
      PROJECTS.map(async (project, i) => {
        const dir = join(work, `app-${i}`);
        await sh("cp", ["-al", await cachedInstall(project, library), dir], work);
        await replaceLibrary(dir, library);
        writeSources(dir, project);
        dirs.set(project, dir);
      }),
    );
    console.log(`      (consumer projects ready in ${((Date.now() - started) / 1000).toFixed(1)} s; cache ${CACHE})`);
    // Compiling is the slow part: start every project's now, each test awaits its own.
    const tsc7 = PROJECTS.filter((p) => p.install.some((spec) => spec.startsWith("typescript@7"))).map((p) => join(dirs.get(p)!, "node_modules/.bin/tsc"))[0];
    for (const project of PROJECTS) builds.set(project, compile(dirs.get(project)!, project.typescript === 6 ? [process.execPath, TSC] : [tsc7]));
    // So are the apps' runs (~1.5 s of CPU each, mostly waiting on the database): three at a time.
    const slots = limiter(3);
    for (const project of PROJECTS) {
      for (const run of project.runs) {
        const database = databaseOf(project, run);
        if (database) reports.set(run, builds.get(project)!.then(() => slots(() => runApp(dirs.get(project)!, run.app, database))));
      }
    }
    for (const pending of [...builds.values(), ...reports.values()]) pending.catch(() => undefined);
  });

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  for (const project of PROJECTS) {
    describe(project.name, () => {
      it(`installs (npm resolves the peers) with exactly the intended versions, and the app type-checks against them with TypeScript ${project.typescript}`, async () => {
        await builds.get(project);
        const dir = dirs.get(project)!;
        for (const absent of project.absent ?? []) expect(existsSync(join(dir, "node_modules", absent)), `${absent} is an optional peer: npm must not install it`).to.equal(false);
      });

      for (const run of project.runs) {
        it(`${run.app === "core" ? "createTokenService" : "tokenServiceModule in the app's inversify container"} on the app's own ${databaseOf(project, run) ?? run.database} DataSource: migrations run, a token is stored and handed out, metrics on the app's registry`, async function () {
          if (!databaseOf(project, run)) this.skip(); // DB_KINDS leaves its server out, and there is no sql.js fallback
          const report = await reports.get(run)!;
          expect(report.database).to.equal(databaseOf(project, run));
          expect(report.migrations).to.include("CreateAppUser1700000000000").and.include("CreateScmTokenEntry1764000000000");
          expect(report.appUsers).to.equal(1);
          expect(report.handedOut).to.equal(true);
          expect(report.liveAtScm).to.equal(true);
          expect(report.metricsOnAppRegistry).to.equal(true);
          // One copy of TypeORM (one metadata storage) and of prom-client: the app's.
          expect(report.libraryTypeorm).to.equal(report.typeorm);
          expect(report.libraryPromClient).to.equal(report.promClient);
          expect(report.typeorm).to.match(new RegExp(`^${project.expected.typeorm.replace(/\./g, "\\.")}`));
          expect(report.promClient).to.match(new RegExp(`^${project.expected.promClient.replace(/\./g, "\\.")}`));
          if (run.app === "di") {
            expect(report.inversify).to.match(new RegExp(`^${project.expected.inversify!.replace(/\./g, "\\.")} at `));
            expect(report.singleton).to.equal(true);
            expect(report.clockBound).to.equal(true);
          } else if (project.expected.inversify) {
            expect(report.tokenServiceModule).to.equal("built");
          } else {
            expect(report.tokenServiceModule).to.match(/^CONFIGURATION: .*npm install inversify/);
          }
        });
      }

      if (project.kitTest) {
        it("a test of the app that uses the testing kit (type-checked above) runs with mocha --require tsx/cjs", async () => {
          await builds.get(project);
          const dir = dirs.get(project)!;
          const { stdout } = await sh(join(dir, "node_modules/.bin/mocha"), ["--require", "tsx/cjs", "kit.test.ts"], dir);
          expect(stdout).to.include("1 passing");
        });
      }
    });
  }
});

/**
 * Where a run goes: MariaDB runs move to sql.js when DB_KINDS has no mariadb, or are skipped in a
 * project without sql.js; PostgreSQL runs are skipped when DB_KINDS has no postgres.
 */
function databaseOf(project: ConsumerProject, run: AppRun): AppRun["database"] | undefined {
  if (run.database === "postgres") return dbKinds().includes("postgres") ? "postgres" : undefined;
  if (run.database === "sqljs" || dbKinds().includes("mariadb")) return run.database;
  return project.install.some((spec) => spec.startsWith("sql.js@")) ? "sqljs" : undefined;
}

/** Runs at most `n` of the tasks given to it at once. */
function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (task) => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/** The project's node_modules, installed once per key (see the comment at the top). */
async function cachedInstall(project: ConsumerProject, library: PackedLibrary): Promise<string> {
  const { dependencies, peerDependencies, peerDependenciesMeta } = library.manifest as PackedLibrary["manifest"] & { peerDependenciesMeta?: unknown };
  const key = createHash("sha256")
    .update(JSON.stringify({ install: project.install, dependencies, peerDependencies, peerDependenciesMeta, node: process.versions.node }))
    .digest("hex")
    .slice(0, 16);
  const dir = join(CACHE, key);
  if (existsSync(join(dir, "node_modules")) && process.env.CONSUMER_CACHE !== "off") {
    utimesSync(dir, new Date(), new Date()); // in use: see the clean-up below
    return dir;
  }
  mkdirSync(CACHE, { recursive: true });
  const staging = `${dir}.tmp-${process.pid}-${randomBytes(3).toString("hex")}`;
  mkdirSync(staging);
  writeFileSync(join(staging, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true }));
  await npm(["install", "--prefer-offline", library.tarball, ...project.install], staging, 400_000).catch((e: { stderr?: string; message: string }) => {
    throw new Error(`npm install of ${project.name} failed:\n${e.stderr ?? e.message}`);
  });
  rmSync(dir, { recursive: true, force: true });
  try {
    renameSync(staging, dir);
  } catch {
    rmSync(staging, { recursive: true, force: true }); // another run won the race: its copy is as good
  }
  // Installs of other versions (of the library's ranges or of the projects) not used for a week.
  for (const old of readdirSync(CACHE)) {
    if (Date.now() - statSync(join(CACHE, old)).mtimeMs > 7 * 24 * 3600_000) rmSync(join(CACHE, old), { recursive: true, force: true });
  }
  return dir;
}

/**
 * The cached copy holds the library as it was when cached: put this run's tarball in its place. Its
 * own node_modules (what npm nested there: dependencies that clash with the app's) stays.
 */
async function replaceLibrary(dir: string, library: PackedLibrary): Promise<void> {
  const target = join(dir, "node_modules", "scm-token-service");
  for (const entry of readdirSync(target)) if (entry !== "node_modules") rmSync(join(target, entry), { recursive: true, force: true });
  await sh("tar", ["-xzf", library.tarball, "-C", target, "--strip-components=1"], dir);
}

function writeSources(dir: string, project: ConsumerProject): void {
  const files = ["common.ts", "app-core.ts", ...(project.expected.inversify ? ["app-di.ts"] : [])];
  writeFileSync(join(dir, "common.ts"), COMMON_TS);
  writeFileSync(join(dir, "app-core.ts"), APP_CORE_TS);
  if (project.expected.inversify) writeFileSync(join(dir, "app-di.ts"), APP_DI_TS);
  if (project.kitTest) {
    writeFileSync(join(dir, "kit.test.ts"), KIT_TEST_TS);
    files.push("kit.test.ts");
  }
  const compilerOptions = { module: "node20", target: "ES2022", strict: true, experimentalDecorators: true, skipLibCheck: true, types: project.kitTest ? ["node", "mocha"] : ["node"], outDir: "out" };
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions, files }));
}

/** Type-checks and compiles the app; `tsc` is the compiler's command line. */
async function compile(dir: string, tsc: string[]): Promise<void> {
  const result = await sh(tsc[0], [...tsc.slice(1), "-p", "."], dir, 120_000).catch((e: { stdout: string; stderr: string }) => ({ stdout: e.stdout + e.stderr }));
  if (result.stdout !== "") throw new Error(`the consumer app does not type-check:\n${result.stdout}`);
}

async function runApp(dir: string, app: "core" | "di", database: AppRun["database"]): Promise<Record<string, unknown>> {
  const env: Record<string, string> = {};
  let dropDatabase = async () => undefined as void;
  if (database === "postgres") {
    const server = new URL(POSTGRES_SERVER_URL);
    const name = `scm_consumer_${process.pid}_${randomBytes(3).toString("hex")}`;
    await adminQuery("postgres", [createDatabaseSql("postgres", name)]);
    Object.assign(env, {
      APP_DB_TYPE: "postgres",
      APP_DATABASE: name,
      APP_DB_HOST: server.hostname,
      APP_DB_PORT: server.port || "5432",
      APP_DB_USER: decodeURIComponent(server.username),
      APP_DB_PASSWORD: decodeURIComponent(server.password),
    });
    dropDatabase = () => adminQuery("postgres", [dropDatabaseSql("postgres", name)]);
  } else if (database === "mariadb") {
    const server = new URL(SERVER_URL);
    const connectionOptions = { host: server.hostname, port: Number(server.port || 3306), user: decodeURIComponent(server.username), password: decodeURIComponent(server.password) };
    const name = `scm_consumer_${process.pid}_${randomBytes(3).toString("hex")}`;
    const connection = await createConnection(connectionOptions);
    await connection.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
    await connection.end();
    Object.assign(env, { APP_DATABASE: name, APP_DB_HOST: connectionOptions.host, APP_DB_PORT: String(connectionOptions.port), APP_DB_USER: connectionOptions.user, APP_DB_PASSWORD: connectionOptions.password });
    dropDatabase = async () => {
      const c = await createConnection(connectionOptions);
      await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await c.end();
    };
  }
  try {
    const { stdout } = await sh(process.execPath, [join("out", `app-${app}.js`)], dir, { env });
    return JSON.parse(stdout.trim().split("\n").pop()!) as Record<string, unknown>;
  } finally {
    await dropDatabase();
  }
}

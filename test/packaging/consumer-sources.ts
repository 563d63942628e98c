/*
 * The source of the apps consumers.test.ts builds against the packed library: a TypeScript app with
 * its own TypeORM DataSource, entity and migration, to which it adds the library's entities and
 * migrations, as the README's "Install and wire it" tells. Kept as text: they are compiled in the
 * consumer projects, against the consumer's own typeorm, inversify and prom-client.
 */

/** Shared by both apps: the app's DataSource (sql.js, MariaDB or PostgreSQL), a stored and handed-out token, and a JSON report on stdout. */
export const COMMON_TS = `
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Column, DataSource, Entity, PrimaryColumn, type MigrationInterface, type QueryRunner } from "typeorm";
import { Registry } from "prom-client";
import { scmTokenServiceEntities, scmTokenServiceMigrations, type TokenService, type TokenServiceOptions } from "scm-token-service";
import { FakeScmServer, providerForFakeScm } from "scm-token-service/testing";

@Entity({ name: "app_user" })
export class AppUser {
  @PrimaryColumn({ type: "varchar", length: 36 })
  id!: string;

  @Column({ type: "varchar", length: 100 })
  name!: string;
}

export class CreateAppUser1700000000000 implements MigrationInterface {
  name = "CreateAppUser1700000000000";
  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE app_user (id varchar(36) NOT NULL PRIMARY KEY, name varchar(100) NOT NULL)");
  }
  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP TABLE app_user");
  }
}

export type Wire = (options: TokenServiceOptions & { dataSource: DataSource }) => Promise<TokenService>;

export function versionOf(name: string, from?: string): string {
  const main = require.resolve(name, from ? { paths: [from] } : undefined);
  let dir = dirname(main);
  while (!dir.endsWith(join("node_modules", name))) dir = dirname(dir);
  return (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string }).version + " at " + dir;
}

export async function main(wire: Wire, extra: () => Promise<Record<string, unknown>> = async () => ({})): Promise<void> {
  const base = {
    entities: [AppUser, ...scmTokenServiceEntities],
    migrations: [CreateAppUser1700000000000, ...scmTokenServiceMigrations],
    synchronize: false,
    logging: false,
  };
  const db = process.env.APP_DATABASE;
  const server = { host: process.env.APP_DB_HOST ?? "127.0.0.1", username: process.env.APP_DB_USER ?? "root", password: process.env.APP_DB_PASSWORD ?? "", database: db };
  const dataSource = !db
    ? new DataSource({ type: "sqljs", ...base })
    : process.env.APP_DB_TYPE === "postgres"
      ? new DataSource({ type: "postgres", ...server, port: Number(process.env.APP_DB_PORT ?? 5432), ...base })
      : new DataSource({ type: "mariadb", ...server, port: Number(process.env.APP_DB_PORT ?? 3306), timezone: "Z", ...base });
  await dataSource.initialize();
  const scm = await FakeScmServer.start({ profile: "bitbucket_dc" });
  try {
    const applied = await dataSource.runMigrations({ transaction: "each" });
    await dataSource.getRepository(AppUser).save({ id: "u-1", name: "Alice" });
    const registry = new Registry();
    const service = await wire({ dataSource, providers: [providerForFakeScm(scm)], encryptionKeys: [{ id: "k1", key: randomBytes(32).toString("base64") }], metricsRegistry: registry });
    const issued = scm.issueTokens({ userId: "alice" });
    await service.storeToken("alice", "bitbucket.example.com", { value: issued.accessToken, refreshToken: issued.refreshToken, expiryDate: issued.expiresAt, scopes: issued.scopes });
    const token = await service.getTokenForHost("alice", "bitbucket.example.com");
    const library = dirname(require.resolve("scm-token-service"));
    const metricNames = (await registry.getMetricsAsJSON()).map((m) => m.name);
    console.log(JSON.stringify({
      database: dataSource.options.type,
      migrations: applied.map((m) => m.name),
      appUsers: await dataSource.getRepository(AppUser).count(),
      handedOut: token?.value === issued.accessToken,
      liveAtScm: token !== undefined && scm.isAccessTokenLive(token.value),
      metricsOnAppRegistry: metricNames.includes("scm_token_refresh_requests_total"),
      typeorm: versionOf("typeorm"),
      libraryTypeorm: versionOf("typeorm", library),
      promClient: versionOf("prom-client"),
      libraryPromClient: versionOf("prom-client", library),
      ...(await extra()),
    }));
  } finally {
    await scm.close();
    await dataSource.destroy();
  }
}
`;

/** The app without a container: createTokenService on the app's DataSource; reports what tokenServiceModule does here. */
export const APP_CORE_TS = `
import { Registry } from "prom-client";
import { createTokenService, tokenServiceModule, TokenServiceError } from "scm-token-service";
import { main } from "./common";

let moduleOptions: Parameters<typeof tokenServiceModule>[0] | undefined;
main(
  async (options) => {
    moduleOptions = options;
    return createTokenService(options);
  },
  async () => {
    try {
      tokenServiceModule({ ...moduleOptions!, metricsRegistry: new Registry() });
      return { tokenServiceModule: "built" };
    } catch (e) {
      return { tokenServiceModule: e instanceof TokenServiceError ? e.code + ": " + e.message : String(e) };
    }
  },
).catch((e) => {
  console.error(e);
  process.exit(1);
});
`;

/** The app on the host's inversify container (whichever major the project has). */
export const APP_DI_TS = `
import { Container } from "inversify";
import { TokenService, tokenServiceModule, TYPES } from "scm-token-service";
import { main, versionOf } from "./common";

let container: Container | undefined;
main(
  async (options) => {
    container = new Container({ defaultScope: "Singleton" });
    await container.load(tokenServiceModule(options)); // inversify 7's load() is async; 6's and 8's return nothing
    return container.get(TokenService);
  },
  async () => ({
    singleton: container!.get(TokenService) === container!.get(TokenService),
    clockBound: container!.isBound(TYPES.Clock),
    inversify: versionOf("inversify"),
  }),
).catch((e) => {
  console.error(e);
  process.exit(1);
});
`;

/** A test of the app's own that uses the testing kit, run with mocha and tsx (no ts-node). */
export const KIT_TEST_TS = `
import assert from "node:assert/strict";
import { createTestTokenService } from "scm-token-service/testing";

describe("the app's use of tokens (testing kit)", () => {
  it("hands out the token of a connected user", async () => {
    const kit = await createTestTokenService();
    try {
      const issued = await kit.connectUser("carol");
      const token = await kit.service.getTokenForHost("carol", kit.host);
      assert.equal(token?.value, issued.accessToken);
    } finally {
      await kit.close();
    }
  });
});
`;

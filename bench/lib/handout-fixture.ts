import { randomBytes } from "node:crypto";
import type { Pool } from "mysql2/promise";
import { createTokenService } from "../../src/create-token-service";
import { StaticFeatureFlags } from "../../src/flags/static-feature-flags";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import type { TokenService } from "../../src/token-service";
import { BaselineHandOut } from "./baseline-mysql2";
import type { BenchDatabase } from "./bench-database";
import type { Operation } from "./closed-loop";
import { accessTokenOf, READABLE_USERS, readableUserId, storeReadable } from "./seed";

export const BENCH_HOST = "bitbucket.bench.example";
export const HOT_USER = "hot-user";
const LIFETIME_MINUTES = 5;
const POOL_SIZE = 10;

/**
 * The library and the baseline side by side on one database: the same rows, the same key, pools of
 * the same size. Flags: opportunistic refresh off; tokens expire in 24 h, so no hand-out refreshes
 * (the provider points at a closed port and would fail loudly if one did).
 */
export class HandOutFixture {
  readonly users = Array.from({ length: READABLE_USERS }, (_, k) => readableUserId(k));
  private constructor(
    readonly service: TokenService,
    readonly baseline: BaselineHandOut,
    /** A plain pool for set-up statements (and the baseline). */
    readonly pool: Pool,
  ) {}

  static async create(db: BenchDatabase): Promise<HandOutFixture> {
    const encryptionKeys = [{ id: "bench", key: randomBytes(32).toString("base64") }];
    const service = await createTokenService({
      databaseUrl: db.url,
      poolSize: POOL_SIZE,
      providers: [new BitbucketServerProvider({ host: BENCH_HOST, baseUrl: "http://127.0.0.1:9", clientId: "bench", clientSecret: "bench" })],
      encryptionKeys,
      flags: new StaticFeatureFlags({ opportunisticRefresh: false }),
    });
    const pool = db.pool(POOL_SIZE);
    const fixture = new HandOutFixture(service, new BaselineHandOut(pool, encryptionKeys), pool);
    await storeReadable(service, BENCH_HOST, [...fixture.users, HOT_USER]);
    return fixture;
  }

  /** getTokenForHost over `users` round-robin; checks every token it gets. */
  libraryOp(users: readonly string[]): Operation {
    const expected = users.map(accessTokenOf);
    return async (seq) => {
      const i = seq % users.length;
      const token = await this.service.getTokenForHost(users[i], BENCH_HOST, { lifetimeMinutes: LIFETIME_MINUTES });
      if (token?.value !== expected[i]) throw new Error("library handed out an unexpected token");
    };
  }

  /** The hand-written mysql2 hand-out over `users` round-robin; same check. */
  baselineOp(users: readonly string[]): Operation {
    const expected = users.map(accessTokenOf);
    const lifetimeMs = LIFETIME_MINUTES * 60_000;
    return async (seq) => {
      const i = seq % users.length;
      const value = await this.baseline.handOut(users[i], BENCH_HOST, lifetimeMs);
      if (value !== expected[i]) throw new Error("baseline handed out an unexpected token");
    };
  }

  async close(): Promise<void> {
    await this.pool.end();
    await this.service.close();
  }
}

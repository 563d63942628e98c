import { randomBytes } from "node:crypto";
import { createTokenService } from "../../src/create-token-service";
import { KeyRing } from "../../src/crypto/key-ring";
import { StaticFeatureFlags } from "../../src/flags/static-feature-flags";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { TokenCrypto } from "../../src/token-crypto";
import type { TokenService } from "../../src/token-service";
import type { BenchTarget, HandOutBaseline, HoldGuard, SetupSql } from "./bench-target";
import type { Operation } from "./closed-loop";
import { accessTokenOf, bulkReadable, READABLE_USERS, readableUserId, storeReadable } from "./seed";

export const BENCH_HOST = "bitbucket.bench.example";
export const HOT_USER = "hot-user";
export const LIFETIME_MINUTES = 5;
export const POOL_SIZE = 10;

/** Which users an operation hands out, in which order. */
export type Picker = (next: () => number) => string;

/** Round-robin over `users` (every user again and again: the write-free steady state). */
export function roundRobin(users: readonly string[]): () => string {
  let i = 0;
  return () => users[i++ % users.length];
}

/** Each user of `order` once (wraps around only if the list runs out: the caller sizes it). */
export function eachOnce(order: ArrayLike<number>, idOf: (k: number) => string): () => string {
  let i = 0;
  return () => {
    // Wrapping around would turn first hand-outs into repeated (write-free) ones and flatter the cell.
    if (i >= order.length) throw new Error(`bench: all ${order.length} users of this cell were handed out once; seed more (--entries) or shorten the cell`);
    return idOf(order[i++]);
  };
}

/**
 * The library and the hand-written baseline of the database's driver (mysql2 or pg) side by side on
 * one database: the same rows, the same key, pools of the same size. Flags: opportunistic refresh off; tokens expire in 24 h, so no hand-out refreshes
 * (the provider points at a closed port and would fail loudly if one did).
 */
export class HandOutFixture {
  readonly users = Array.from({ length: READABLE_USERS }, (_, k) => readableUserId(k));
  private constructor(
    readonly service: TokenService,
    readonly baseline: HandOutBaseline,
    /** A plain pool for set-up statements. */
    readonly pool: SetupSql,
    private readonly crypto: TokenCrypto,
    /** The key ring both sides use (a probe service needs it too). */
    readonly encryptionKeys: { id: string; key: string }[],
    private readonly db: BenchTarget,
  ) {}

  private uncached: TokenService | undefined;

  /**
   * A second service on the same database (a pool of its own, of the same size) that keeps no
   * decrypted tokens (decryptedTokenCacheSize 0): it decrypts on every hand-out, as the baseline does.
   * Opened on first use.
   */
  async serviceWithoutDecryptCache(): Promise<TokenService> {
    this.uncached ??= await benchService(this.db, this.encryptionKeys, { decryptedTokenCacheSize: 0 });
    return this.uncached;
  }

  static async create(db: BenchTarget): Promise<HandOutFixture> {
    const encryptionKeys = [{ id: "bench", key: randomBytes(32).toString("base64") }];
    const service = await benchService(db, encryptionKeys);
    const fixture = new HandOutFixture(service, db.baseline(POOL_SIZE, encryptionKeys), db.setupSql(2), new TokenCrypto(new KeyRing(encryptionKeys)), encryptionKeys, db);
    await storeReadable(service, BENCH_HOST, [...fixture.users, HOT_USER]);
    return fixture;
  }

  /** Bulk rows `bulkUserId(from … to-1)`, readable by both sides. */
  seedReadable(from: number, to: number, progress?: (rows: number) => void): Promise<number> {
    return bulkReadable(this.pool, BENCH_HOST, this.crypto, from, to, 2, progress);
  }

  /** getTokenForHost (non-releasable, 5 minutes) of the user `pick` gives, on `service` (default: the fixture's); checks every token. */
  libraryOp(pick: () => string, service: TokenService = this.service): Operation {
    return async () => {
      const userId = pick();
      const token = await service.getTokenForHost(userId, BENCH_HOST, { lifetimeMinutes: LIFETIME_MINUTES });
      if (token?.value !== accessTokenOf(userId)) throw new Error("library handed out an unexpected token");
    };
  }

  /** The hand-written SELECT + reserve UPDATE on `baseline` (default: the fixture's); same check. */
  baselineOp(pick: () => string, baseline: HandOutBaseline = this.baseline): Operation {
    const lifetimeMs = LIFETIME_MINUTES * 60_000;
    return async () => {
      const userId = pick();
      const value = await baseline.handOut(userId, BENCH_HOST, lifetimeMs);
      if (value !== accessTokenOf(userId)) throw new Error("baseline handed out an unexpected token");
    };
  }

  /** A releasable hand-out and its release (getTokenForHost({ releasable: true }) + releaseReservation). */
  libraryReleasableOp(pick: () => string): Operation {
    return async () => {
      const userId = pick();
      const token = await this.service.getTokenForHost(userId, BENCH_HOST, { lifetimeMinutes: LIFETIME_MINUTES, releasable: true });
      if (token?.value !== accessTokenOf(userId)) throw new Error("library handed out an unexpected token");
      if (!(await this.service.releaseReservation(token))) throw new Error("library release found no hold");
    };
  }

  /** The hand-written SELECT + INSERT hold (guarded: the library's statement), then DELETE hold; on `baseline` (default: the fixture's). */
  baselineReleasableOp(pick: () => string, guard: HoldGuard = "guarded", baseline: HandOutBaseline = this.baseline): Operation {
    const lifetimeMs = LIFETIME_MINUTES * 60_000;
    return async () => {
      const userId = pick();
      const got = await baseline.handOutReleasable(userId, BENCH_HOST, lifetimeMs, guard);
      if (got?.value !== accessTokenOf(userId)) throw new Error("baseline handed out an unexpected token");
      await baseline.release(got.holdId);
    };
  }

  /** The library's count of write-free hand-outs so far (scm_token_handouts_write_free_total). */
  async writeFreeCount(service: TokenService = this.service): Promise<number> {
    const metric = service.metricsRegistry.getSingleMetric("scm_token_handouts_write_free_total");
    return metric ? (await metric.get()).values.reduce((s, v) => s + v.value, 0) : 0;
  }

  /** The library's count of hand-outs so far (scm_token_refresh_requests_total). */
  async handOutCount(service: TokenService = this.service): Promise<number> {
    const metric = service.metricsRegistry.getSingleMetric("scm_token_refresh_requests_total");
    return metric ? (await metric.get()).values.reduce((s, v) => s + v.value, 0) : 0;
  }

  async close(): Promise<void> {
    await this.pool.end();
    await this.baseline.end();
    await this.service.close();
    await this.uncached?.close();
  }
}

/** The measured service: pool of POOL_SIZE, opportunistic refresh off, a provider that would fail loudly if a hand-out refreshed. */
function benchService(db: BenchTarget, encryptionKeys: { id: string; key: string }[], extra: { decryptedTokenCacheSize?: number } = {}): Promise<TokenService> {
  return createTokenService({
    databaseUrl: db.url,
    poolSize: POOL_SIZE,
    providers: [new BitbucketServerProvider({ host: BENCH_HOST, baseUrl: "http://127.0.0.1:9", clientId: "bench", clientSecret: "bench" })],
    encryptionKeys,
    flags: new StaticFeatureFlags({ opportunisticRefresh: false }),
    ...extra,
  });
}

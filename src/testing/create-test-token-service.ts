import { randomBytes } from "node:crypto";
import { Registry } from "prom-client";
import type { DataSource } from "typeorm";
import { createTokenService } from "../create-token-service";
import { openDataSource } from "../storage/data-source";
import type { FlagValues } from "../flags/feature-flags";
import { StaticFeatureFlags } from "../flags/static-feature-flags";
import type { ScmProvider } from "../providers/scm-provider";
import type { TokenService } from "../token-service";
import type { TokenServiceOptions } from "../token-service-options";
import { FakeClock } from "./fake-clock";
import { FakeScmServer, type FakeScmProfileName, type FakeScmServerOptions } from "./fake-scm";
import { providerForFakeScm } from "./provider-for-fake-scm";
import { RecordingLogger } from "./recording-logger";

/** Everything a test needs, wired together. */
export interface TestTokenService {
  service: TokenService;
  /** The fake SCM the provider talks to. */
  scm: FakeScmServer;
  /** Shared by the service and the fake SCM. */
  clock: FakeClock;
  /** Change flags during a test: `flags.set({ opportunisticRefresh: true })`. */
  flags: StaticFeatureFlags;
  logger: RecordingLogger;
  /** The service's metrics registry: `serviceOptions.metricsRegistry` when you passed one, else a fresh one. */
  registry: Registry;
  /** The database the service uses (yours, or the embedded one it opened). */
  dataSource: DataSource;
  /** The host the token is stored under (a provider for the fake SCM). */
  host: string;
  /** Mints a token family at the fake SCM and stores it for `userId` (default "user-1"). Returns the SCM's tokens. */
  connectUser(userId?: string, scopes?: string[]): Promise<{ accessToken: string; refreshToken?: string; expiresAt?: Date }>;
  /** The Prometheus text of the service's registry. */
  metricsText(): Promise<string>;
  /** Closes the service (its metrics leave the registry), its database (unless you passed one) and the fake SCM. */
  close(): Promise<void>;
}

export interface TestTokenServiceOptions {
  /** The fake SCM's profile (default "bitbucket_dc"). */
  profile?: FakeScmProfileName;
  /** Overrides for the fake SCM's profile knobs. */
  scmOverrides?: FakeScmServerOptions["overrides"];
  /** Initial flag values (default: the library defaults — opportunistic refresh on, horizon 20 min narrowed per hand-out kind to lifetime + 8 min, drain and early drain on). */
  flags?: FlagValues;
  /** Default: a FakeClock at 2026-01-01T00:00:00Z with autoAdvance (sleeps move time). */
  clock?: FakeClock;
  /** Use this DataSource (e.g. MariaDB) instead of a fresh embedded in-memory database. */
  dataSource?: DataSource;
  /** Host name tokens are stored under (default: the profile's usual host, e.g. "bitbucket.example.com"). */
  host?: string;
  /** Any other TokenService option (retry, lease, metricsPrefix, …). */
  serviceOptions?: Partial<Omit<TokenServiceOptions, "providers" | "encryptionKeys" | "flags" | "clock" | "logger" | "dataSource">>;
}

/**
 * A TokenService on the embedded database, against a FakeScmServer, with a FakeClock, static flags,
 * a recording logger and its own metrics registry, in one call. No MySQL and no network needed.
 *
 * @example
 * const t = await createTestTokenService({ flags: { opportunisticRefresh: true } });
 * try {
 *   await t.connectUser("alice");
 *   const token = await t.service.getTokenForWorkspaceStart("alice", t.host);
 *   expect(t.scm.isAccessTokenLive(token!.value)).to.equal(true);
 * } finally {
 *   await t.close();
 * }
 */
export async function createTestTokenService(options: TestTokenServiceOptions = {}): Promise<TestTokenService> {
  const clock = options.clock ?? new FakeClock("2026-01-01T00:00:00.000Z");
  const profile = options.profile ?? "bitbucket_dc";
  const scm = await FakeScmServer.start({ profile, clock, overrides: options.scmOverrides });
  const provider: ScmProvider = providerForFakeScm(scm, options.host);
  const logger = new RecordingLogger();
  const flags = new StaticFeatureFlags(options.flags ?? {}, logger);
  // Yours when you pass one (e.g. the registry your /metrics endpoint serves), else a fresh one.
  const registry = options.serviceOptions?.metricsRegistry ?? new Registry();
  let service: TokenService;
  const ownDataSource = options.dataSource ? undefined : await openDataSource("sqljs::memory:");
  const dataSource = options.dataSource ?? ownDataSource!;
  try {
    service = await createTokenService({
      retry: { baseDelayMs: 10, timeoutMs: 2_000 },
      ...options.serviceOptions,
      dataSource,
      providers: [provider],
      encryptionKeys: [{ id: "test", key: randomBytes(32).toString("base64") }],
      flags,
      clock,
      logger,
      metricsRegistry: registry,
    });
  } catch (e) {
    await scm.close();
    if (ownDataSource) await ownDataSource.destroy();
    throw e;
  }
  const host = provider.host;
  return {
    service,
    scm,
    clock,
    flags,
    logger,
    registry,
    dataSource,
    host,
    async connectUser(userId = "user-1", scopes?: string[]) {
      const issued = scm.issueTokens({ userId, scopes });
      await service.storeToken(userId, host, {
        value: issued.accessToken,
        refreshToken: issued.refreshToken,
        expiryDate: issued.expiresAt,
        scopes: issued.scopes,
      });
      return issued;
    },
    metricsText: () => registry.metrics(),
    async close() {
      // The service's metrics leave the registry (a registry you passed stays usable for another service).
      await service.close();
      await scm.close();
      if (ownDataSource?.isInitialized) await ownDataSource.destroy();
    },
  };
}

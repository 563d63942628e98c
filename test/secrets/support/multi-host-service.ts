import { randomBytes } from "node:crypto";
import { Registry } from "prom-client";
import type { DataSource } from "typeorm";
import { createTokenService } from "../../../src/create-token-service";
import { StaticFeatureFlags } from "../../../src/flags/static-feature-flags";
import { BitbucketServerProvider } from "../../../src/providers/bitbucket-server-provider";
import { TokenStore } from "../../../src/storage/token-store";
import { FakeClock } from "../../../src/testing/fake-clock";
import { FakeScmServer } from "../../../src/testing/fake-scm";
import { RecordingLogger } from "../../../src/testing/recording-logger";
import type { TokenService } from "../../../src/token-service";
import { closeDataSource, openTestDataSource, type DbKind } from "../../support/databases";

/** A TokenService with one Bitbucket DC fake per host (the test kit's factory supports one host). */
export interface MultiHostService {
  service: TokenService;
  /** host → its fake SCM. */
  scms: Map<string, FakeScmServer>;
  clock: FakeClock;
  flags: StaticFeatureFlags;
  logger: RecordingLogger;
  dataSource: DataSource;
  /** Mints a token family at the host's fake and stores it for the user. */
  connect(userId: string, host: string, username?: string): Promise<{ accessToken: string }>;
  /** Until when the stored token is held: the later of reservedUntilDate and its live holds (releasable hand-outs). */
  reservedUntil(userId: string, host: string): Promise<Date | undefined>;
  close(): Promise<void>;
}

/**
 * Opportunistic refresh on with no horizon (Gitpod's rule), so a workspace-start hand-out of a
 * freshly stored, unreserved token refreshes it — the case where a reservation matters most.
 *
 * @example
 * const t = await multiHostService("sqljs", ["git.alpha.example.com", "git.beta.example.com"]);
 */
export async function multiHostService(kind: DbKind, hosts: readonly string[]): Promise<MultiHostService> {
  const clock = new FakeClock("2026-01-01T00:00:00.000Z");
  const scms = new Map<string, FakeScmServer>();
  for (const host of hosts) scms.set(host, await FakeScmServer.start({ profile: "bitbucket_dc", clock }));
  const dataSource = await openTestDataSource(kind);
  const logger = new RecordingLogger();
  const flags = new StaticFeatureFlags({ opportunisticRefresh: true, horizonMinutes: 0 }, logger);
  const service = await createTokenService({
    dataSource,
    providers: hosts.map((host) => new BitbucketServerProvider({ host, baseUrl: scms.get(host)!.baseUrl, clientId: "test-client", clientSecret: "test-secret" })),
    encryptionKeys: [{ id: "test", key: randomBytes(32).toString("base64") }],
    flags,
    clock,
    logger,
    metricsRegistry: new Registry(),
    retry: { baseDelayMs: 10, timeoutMs: 2_000 },
  });
  return {
    service,
    scms,
    clock,
    flags,
    logger,
    dataSource,
    async connect(userId, host, username) {
      const issued = scms.get(host)!.issueTokens({ userId });
      await service.storeToken(userId, host, { value: issued.accessToken, refreshToken: issued.refreshToken, expiryDate: issued.expiresAt, scopes: issued.scopes, username });
      return issued;
    },
    async reservedUntil(userId, host) {
      const store = new TokenStore(dataSource);
      const entry = await store.find(userId, host);
      if (!entry) return undefined;
      const { latestUntil } = await store.liveHolds(entry.id, entry.version, clock.now());
      const ends = [entry.reservedUntilDate, latestUntil].filter((d): d is Date => d !== undefined);
      return ends.length ? new Date(Math.max(...ends.map((d) => d.getTime()))) : undefined;
    },
    async close() {
      for (const scm of scms.values()) await scm.close();
      await closeDataSource(dataSource);
    },
  };
}

import { randomBytes } from "node:crypto";
import type { DataSource } from "typeorm";
import type { EncryptionKey } from "../../src/crypto/key-ring";
import { resolveParts } from "../../src/di";
import { silentLogger } from "../../src/logger";
import { BitbucketServerProvider } from "../../src/providers/bitbucket-server-provider";
import { TokenStore } from "../../src/storage/token-store";
import { FakeClock } from "../../src/testing/fake-clock";
import { TokenService } from "../../src/token-service";
import { closeDataSource, openTestDataSource, type DbKind } from "../support/databases";

export const HOST = "bitbucket.example.com";

/** A fresh key (id + 32 random bytes). */
export function newKey(id: string): EncryptionKey {
  return { id, key: randomBytes(32).toString("base64") };
}

/**
 * Services over one database that differ only in their key ring, so a test can take a key out of the
 * ring and put it back. Tokens here never expire or are one-shot: no SCM is called.
 */
export interface TrustFixture {
  dataSource: DataSource;
  clock: FakeClock;
  /** The default service, with `keys`. */
  service: TokenService;
  keys: EncryptionKey[];
  /** A service on the same database and clock with another key ring (and optionally another store). */
  serviceWith(keys: EncryptionKey[], store?: TokenStore): TokenService;
  /** The raw rows of `userId` (byte-exact comparison on every database, whatever the collation). */
  rawRows(userId: string): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

export async function trustFixture(kind: DbKind, dataSource?: DataSource): Promise<TrustFixture> {
  const ds = dataSource ?? (await openTestDataSource(kind));
  const clock = new FakeClock("2026-01-01T00:00:00.000Z");
  const keys = [newKey("k1")];
  const serviceWith = (ring: EncryptionKey[], store?: TokenStore) => {
    const providers = [new BitbucketServerProvider({ host: HOST, clientId: "c", clientSecret: "s" })];
    const parts = resolveParts({ providers, encryptionKeys: ring, clock });
    return new TokenService(store ?? new TokenStore(ds), parts.crypto, providers, parts.flags, parts.metrics, clock, silentLogger, parts.settings);
  };
  return {
    dataSource: ds,
    clock,
    keys,
    service: serviceWith(keys),
    serviceWith,
    async rawRows(userId: string) {
      // HEX() / hex() compare bytes on MySQL, MariaDB and SQLite alike, whatever the column collation.
      const hex = Buffer.from(userId, "utf8").toString("hex");
      // Byte for byte, whatever the column's collation.
      if (ds.options.type === "postgres") return ds.query(`SELECT * FROM scm_token_entry WHERE encode(convert_to("userId", 'UTF8'), 'hex') = $1`, [hex]);
      return ds.query("SELECT * FROM scm_token_entry WHERE HEX(userId) = ?", [hex.toUpperCase()]);
    },
    async close() {
      if (!dataSource) await closeDataSource(ds);
    },
  };
}

let counter = 0;
/** A prefix unique in this run, so tests sharing the run's MariaDB database never see each other's users. */
export function uniquePrefix(): string {
  return `t${process.pid}x${++counter}x${randomBytes(3).toString("hex")}`;
}

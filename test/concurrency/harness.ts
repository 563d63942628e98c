import { randomBytes } from "node:crypto";
import type { DataSource } from "typeorm";
import { KeyRing, type EncryptionKey } from "../../src/crypto/key-ring";
import type { FakeScmServer } from "../../src/testing/fake-scm";
import { TokenStore, type StoredEntry } from "../../src/storage/token-store";
import { Prng } from "../../src/simulation/prng";
import { TokenCrypto } from "../../src/token-crypto";
import type { MetricSample } from "./protocol";

/** Helpers shared by the concurrency tests. */

export const HOST = "bitbucket.example.com";
export const CLIENT = { clientId: "test-client", clientSecret: "test-secret" } as const;

export function newEncryptionKey(): EncryptionKey {
  return { id: "test", key: randomBytes(32).toString("base64") };
}

export { tokenHash } from "./protocol";

/** A stored row, decrypted: what the database really holds for (userId, host). */
export interface DecryptedRow {
  entry: StoredEntry;
  accessToken: string;
  refreshToken: string | undefined;
}

/** Reads rows straight from the store (no hand-out, no reservation) and decrypts them with the test key. */
export class RowReader {
  readonly store: TokenStore;
  private readonly crypto: TokenCrypto;

  constructor(dataSource: DataSource, key: EncryptionKey) {
    this.store = new TokenStore(dataSource);
    this.crypto = new TokenCrypto(new KeyRing([key]));
  }

  async read(userId: string, host = HOST): Promise<DecryptedRow> {
    const entry = await this.store.find(userId, host);
    if (!entry) throw new Error(`no row for ${userId}@${host}`);
    return {
      entry,
      accessToken: this.crypto.decrypt("access", userId, host, entry.accessTokenCiphertext),
      refreshToken: entry.refreshTokenCiphertext === undefined ? undefined : this.crypto.decrypt("refresh", userId, host, entry.refreshTokenCiphertext),
    };
  }
}

/** Whether the fake SCM would still accept `refreshToken` now ("none" when there is none). */
export function refreshTokenStatus(scm: FakeScmServer, refreshToken: string | undefined): string {
  return refreshToken === undefined ? "none" : scm.refreshTokenStatus(refreshToken);
}

/** Polls `check` (real time, bounded) until it returns a value other than undefined. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 5_000): Promise<T> {
  const started = Date.now();
  let delay = 1;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(25, delay * 2);
  }
}

/** Settles a promise into a value the tests can inspect without try/catch. */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

export function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** "ReauthorizationRequiredError(lost_rotation)", "ScmUnavailableError", "QueryFailedError" … */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return `non-Error ${typeof error}`;
  const reason = (error as { reason?: unknown }).reason;
  return typeof reason === "string" ? `${error.name}(${reason})` : error.name;
}

/**
 * Every refresh the fake SCM commits, timed inside the fake: `beganAt` at the pause point after
 * validation (the commit, and with it the revocation of the old access token, comes after it — under
 * the fake's global lock), `committedAt` at the pause point after the commit. Pauses are released at once.
 */
export class RefreshLog {
  readonly entries: { beganAt: number; committedAt?: number }[] = [];
  private commits = 0;

  constructor(private readonly scm: FakeScmServer) {
    this.armBegin();
    this.armCommit();
  }

  private armBegin(): void {
    const pause = this.scm.pauseAt("afterValidate");
    pause.reached.then(
      () => {
        this.entries.push({ beganAt: Date.now() });
        this.armBegin();
        pause.release();
      },
      () => undefined, // the server closed
    );
  }

  private armCommit(): void {
    const pause = this.scm.pauseAt("afterCommit");
    pause.reached.then(
      () => {
        const entry = this.entries[this.commits++];
        if (entry) entry.committedAt = Date.now();
        this.armCommit();
        pause.release();
      },
      () => undefined,
    );
  }
}

/** A seeded uniform [0, 1) generator (the simulation's mulberry32): every choice of a race round follows from its seed. */
export function seeded(seed: number): () => number {
  const prng = new Prng(seed);
  return () => prng.next();
}

/** Waits until a point in time chosen by a seed (scheduling a race, not synchronising it). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The sum of a metric's samples (a replica's readMetrics answer) whose labels include `labels`. */
export function metricSum(samples: MetricSample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => String(s.labels[k]) === v)).reduce((sum, s) => sum + s.value, 0);
}

import { inspect } from "node:util";
import type { DataSource } from "typeorm";
import { checkInterface, checkNumberArgument, checkObjectArgument, checkObjectOption } from "../../check-option";
import { systemClock, type Clock } from "../../clock";
import type { KeyRing } from "../../crypto/key-ring";
import { ConfigurationError, InvalidArgumentError } from "../../errors";
import { silentLogger, type Logger } from "../../logger";
import { hasLoneSurrogate, isStorableText } from "../../validation";
import { SECRET_LIMITS } from "../limits";
import { SecretNotFoundError } from "../secret-errors";
import { checkSecretId, newSecretId } from "./secret-id";
import { StorageError } from "../../errors";
import { SecretStore } from "./secret-store";

export interface TakeOnceSecretsOptions {
  /** Longest allowed `expiresInMs` (default 24 h; at most 30 days). */
  maxExpiresInMs?: number;
  /** pino-compatible; gets counts and purposes, never ids or values. Default silent. */
  logger?: Logger;
}

/** What create() returns: the id to hand to the consumer, and when the secret stops being takeable. */
export interface CreatedSecret {
  id: string;
  expiresAt: Date;
}

/** Everything about a secret except its value (for operators and the reaper's callers). */
export interface SecretMetadata {
  purpose?: string;
  state: "created" | "referenced";
  reference?: string;
  expiresAt: Date;
  createdAt: Date;
}

const PURPOSE = /^[A-Za-z0-9._:-]{1,64}$/;
const MAX_EXPIRES_CEILING_MS = 30 * 24 * 60 * 60 * 1000;
const LOCK_RETRIES = 3;

/**
 * Expiring take-once secrets, stored encrypted (KeyRing, context bound to the id) in
 * `scm_secret`. `take` fetches and deletes in one atomic step: among concurrent takers exactly one
 * gets the value — the one whose `DELETE … WHERE id = ?` affected the row — and an expired secret
 * is never returned. Deletion is loud: `delete` throws when nothing was deleted.
 *
 * **Crash-safe ordering: create → act → update.**
 * 1. `create` the secret first (it expires on its own),
 * 2. act — e.g. start the workspace and give it the id,
 * 3. `attachReference(id, workspaceId)` to record what the secret went to.
 * A crash after 1 leaves an unreferenced secret nobody knows the id of; after 2, a consumer that
 * may take it (or not) and an unreferenced row; after 3, a referenced row until it is taken. In
 * every case the row expires, and `reapExpired` — run it periodically on every replica — deletes
 * it: nothing outlives its expiry. The opposite order (act first, then create) could leave a
 * consumer waiting for a secret that never appears.
 *
 * Ids are bearer capabilities (whoever has one can take the secret): they never appear in logs or
 * error messages. Values are at most 32 KiB (UTF-8); expiry is 1 s to `maxExpiresInMs` (24 h default).
 *
 * @example
 * const secrets = new TakeOnceSecrets(dataSource, new KeyRing(keys), systemClock, { logger });
 * const { id } = await secrets.create(gitToken, { expiresInMs: 15 * 60_000, purpose: "workspace-start" }); // 1. create
 * const workspace = await startWorkspace({ secretId: id });                                                 // 2. act
 * await secrets.attachReference(id, workspace.id);                                                          // 3. update
 * // in the workspace:   const token = await secrets.take(id, { purpose: "workspace-start" });
 * // on every replica:   setInterval(() => secrets.reapExpired({ batchSize: 1000 }), 60_000);
 */
export class TakeOnceSecrets {
  // A private field, not a property: spreading or inspecting the object must not reach the DataSource
  // (its options hold the database password).
  readonly #store: SecretStore;
  private readonly maxExpiresInMs: number;
  private readonly logger: Logger;

  constructor(
    dataSource: DataSource,
    private readonly keyRing: KeyRing,
    private readonly clock: Clock = systemClock,
    options: TakeOnceSecretsOptions = {},
  ) {
    checkObjectOption(options, "TakeOnceSecrets options", ["maxExpiresInMs", "logger"]);
    checkInterface(options.logger, "logger", ["debug", "info", "warn", "error"], "a pino-compatible logger");
    this.#store = new SecretStore(dataSource);
    this.logger = options.logger ?? silentLogger;
    const max = options.maxExpiresInMs ?? SECRET_LIMITS.maxTakeOnceExpiresInMs;
    if (typeof max !== "number" || !Number.isFinite(max) || max < SECRET_LIMITS.minTakeOnceExpiresInMs || max > MAX_EXPIRES_CEILING_MS) {
      throw new ConfigurationError(`maxExpiresInMs must be a number of milliseconds from ${SECRET_LIMITS.minTakeOnceExpiresInMs} to ${MAX_EXPIRES_CEILING_MS} (30 days)`);
    }
    this.maxExpiresInMs = max;
  }

  /**
   * Stores `value` encrypted until now + `expiresInMs` and returns its new, unguessable id.
   *
   * @throws InvalidArgumentError for an empty or oversized value, a bad expiry or purpose
   * @example
   * const { id, expiresAt } = await secrets.create("ghp_…", { expiresInMs: 10 * 60_000, purpose: "workspace-start" });
   */
  async create(value: string, options: { expiresInMs: number; purpose?: string }): Promise<CreatedSecret> {
    if (typeof value !== "string" || value.length === 0 || Buffer.byteLength(value, "utf8") > SECRET_LIMITS.maxTakeOnceValueBytes || hasLoneSurrogate(value)) {
      // Never echo the value: it is a secret. A lone surrogate would come back as U+FFFD (UTF-8 cannot hold it).
      throw new InvalidArgumentError("value", `value must be a non-empty string of at most ${SECRET_LIMITS.maxTakeOnceValueBytes} bytes (UTF-8) without unpaired surrogates; encode binary data as base64 first`);
    }
    if (typeof options !== "object" || options === null) throw new InvalidArgumentError("options", "options must be { expiresInMs, purpose? }");
    checkObjectArgument(options, "options", ["expiresInMs", "purpose"]);
    const expiresInMs = this.checkExpiresInMs(options.expiresInMs);
    const purpose = checkPurpose(options.purpose);
    const now = this.clock.now();
    const id = newSecretId();
    const expiresAt = new Date(now.getTime() + expiresInMs);
    await this.#store.insert({ id, ciphertext: this.keyRing.encrypt(value, context(id)), purpose, expiresAt, createdAt: now });
    this.logger.debug({ purpose, expiresAt: expiresAt.toISOString() }, "Take-once secret created");
    return { id, expiresAt };
  }

  /**
   * Returns the value and deletes the secret, atomically: of any number of concurrent takers exactly
   * one gets the value, the others get undefined. Also undefined when the id is unknown, the secret
   * has expired (it is left for the reaper), or `purpose` is given and differs (the secret stays).
   *
   * @throws InvalidArgumentError for a malformed id or purpose; DecryptionError when the row does not decrypt (it is kept)
   * @example
   * const token = await secrets.take(id, { purpose: "workspace-start" });
   * if (token === undefined) failStart("secret already used or expired");
   */
  async take(id: string, options: { purpose?: string } = {}): Promise<string | undefined> {
    checkSecretId(id);
    const purpose = checkPurpose(options.purpose);
    const row = await this.#store.find(id);
    if (!row) return undefined;
    if (row.expiresAt.getTime() <= this.clock.now().getTime()) return undefined; // expired: left for the reaper
    if (purpose !== undefined && row.purpose !== purpose) return undefined;
    // Decrypt before deleting: a row that does not decrypt stays for investigation and the reaper.
    const value = this.keyRing.decrypt(row.ciphertext, context(id));
    if (!(await this.#store.delete(id))) return undefined; // another taker won
    this.logger.debug({ purpose: row.purpose }, "Take-once secret taken");
    return value;
  }

  /**
   * Deletes the secret whatever its state. Loud by default (deleting fails when there is nothing
   * to delete, so a lost secret is noticed): with `mustExist` (default true) a missing secret throws SecretNotFoundError;
   * with `mustExist: false` it returns false instead.
   *
   * @example
   * await secrets.delete(id);                        // throws if it was already taken
   * const gone = await secrets.delete(id, { mustExist: false });
   */
  async delete(id: string, options: { mustExist?: boolean } = {}): Promise<boolean> {
    checkSecretId(id);
    const deleted = await this.#store.delete(id);
    if (!deleted && (options.mustExist ?? true)) throw new SecretNotFoundError("delete");
    return deleted;
  }

  /**
   * Step 3 of create→act→update: records what the secret was handed to (e.g. the workspace id).
   * Idempotent for the same reference. Returns false when the secret is already gone — usually fine:
   * the consumer took it before you got here; pass `mustExist: true` to throw SecretNotFoundError instead.
   *
   * @throws InvalidArgumentError for a bad id or reference, or when a different reference is already attached
   * @example
   * await secrets.attachReference(id, workspace.id);
   */
  async attachReference(id: string, reference: string, options: { mustExist?: boolean } = {}): Promise<boolean> {
    checkSecretId(id);
    if (typeof reference !== "string" || reference.length === 0 || reference.length > 255 || !isStorableText(reference)) {
      throw new InvalidArgumentError("reference", "reference must be a non-empty string of at most 255 characters without control characters or unpaired surrogates (e.g. the workspace id)");
    }
    if (await this.#store.setReference(id, reference)) return true;
    const row = await this.#store.find(id);
    if (row) throw new InvalidArgumentError("reference", "this secret already has a different reference; a secret goes to one consumer only — create a new one");
    if (options.mustExist) throw new SecretNotFoundError("attachReference");
    return false;
  }

  /**
   * Everything about a secret except its value, or undefined when it does not exist.
   * @example (await secrets.describe(id))?.reference; // "ws-1234"
   */
  async describe(id: string): Promise<SecretMetadata | undefined> {
    checkSecretId(id);
    const row = await this.#store.find(id);
    if (!row) return undefined;
    return { purpose: row.purpose, state: row.state === "referenced" ? "referenced" : "created", reference: row.reference, expiresAt: row.expiresAt, createdAt: row.createdAt };
  }

  /**
   * Deletes expired secrets (expiresAt ≤ now) in batches of `batchSize` (default 1000, 1–10000), at
   * most `maxBatches` batches (default: until none is left). Each batch is two short statements
   * (read ids on the expiry index, delete by primary key), so locks stay short while takes and
   * creates go on, and it is safe to run at the same time on every replica: a row deleted by
   * another reaper simply does not count here. Deadlocks and lock-wait timeouts are retried.
   * Returns how many rows this call deleted.
   *
   * @example
   * const deleted = await secrets.reapExpired({ batchSize: 1000, maxBatches: 100 });
   */
  async reapExpired(options: { batchSize?: number; maxBatches?: number } = {}): Promise<number> {
    checkObjectArgument(options, "options", ["batchSize", "maxBatches"]);
    const batchSize = options.batchSize === undefined ? 1000 : checkNumberArgument(options.batchSize, "batchSize", { min: 1, max: 10_000, integer: true });
    const maxBatches = options.maxBatches === undefined ? Number.POSITIVE_INFINITY : checkNumberArgument(options.maxBatches, "maxBatches", { min: 1, max: Number.POSITIVE_INFINITY, integer: true });
    let total = 0;
    let batches = 0;
    while (batches < maxBatches) {
      const { selected, deleted } = await this.reapBatch(batchSize);
      batches++;
      total += deleted;
      if (selected < batchSize) break;
    }
    if (total > 0) this.logger.info({ deleted: total, batches }, "Expired take-once secrets deleted");
    return total;
  }

  /** Names the table, never a secret or an id. */
  toJSON(): Record<string, unknown> {
    return { table: "scm_secret", maxExpiresInMs: this.maxExpiresInMs };
  }

  [inspect.custom](): string {
    return `TakeOnceSecrets ${inspect(this.toJSON())}`;
  }

  private async reapBatch(batchSize: number): Promise<{ selected: number; deleted: number }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#store.deleteExpiredBatch(this.clock.now(), batchSize);
      } catch (e) {
        if (!(e instanceof StorageError && e.transient) || attempt >= LOCK_RETRIES) throw e;
      }
    }
  }

  private checkExpiresInMs(ms: unknown): number {
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < SECRET_LIMITS.minTakeOnceExpiresInMs || ms > this.maxExpiresInMs) {
      throw new InvalidArgumentError(
        "expiresInMs",
        `expiresInMs must be a number of milliseconds from ${SECRET_LIMITS.minTakeOnceExpiresInMs} to ${this.maxExpiresInMs}, got ${typeof ms === "number" ? ms : typeof ms}`,
      );
    }
    return Math.ceil(ms);
  }
}

/** The KeyRing context: a ciphertext copied to another row (another id) does not decrypt. */
function context(id: string): string {
  return JSON.stringify(["scm-secret", id]);
}

function checkPurpose(purpose: unknown): string | undefined {
  if (purpose === undefined) return undefined;
  if (typeof purpose !== "string" || !PURPOSE.test(purpose)) {
    throw new InvalidArgumentError("purpose", "purpose must be 1 to 64 characters of letters, digits, '.', '_', ':' and '-' (e.g. \"workspace-start\")");
  }
  return purpose;
}

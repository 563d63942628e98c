import { createCipheriv, createDecipheriv, createHmac, randomBytes } from "node:crypto";
import { ConfigurationError } from "../errors";
import type { HandOutRef } from "../token";

const VERSION = "h1";
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Per caller, at most this many token digests are kept for release-by-token; the oldest go first. */
const MAX_DIGESTS_PER_CALLER = 256;

/**
 * Release handles: a hand-out's `HandOutRef` sealed with AES-256-GCM under the broker's key, bound
 * (as additional authenticated data) to the caller it was issued to. Opaque to the caller, unforgeable,
 * useless to anyone else, and stateless: every replica with the same key can open it.
 */
export class ReleaseHandles {
  private readonly key: Buffer;
  private readonly digestKey: Buffer;

  constructor(key?: string | Buffer) {
    this.key = key === undefined ? randomBytes(32) : typeof key === "string" ? Buffer.from(key, "base64") : Buffer.from(key);
    if (this.key.length !== 32) {
      throw new ConfigurationError("releaseHandleKey must be 32 bytes (base64 of 32 random bytes: openssl rand -base64 32)", "releaseHandleKey");
    }
    // A separate key for token digests, derived so one secret configures both.
    this.digestKey = createHmac("sha256", this.key).update("token-digest").digest();
  }

  seal(ref: HandOutRef, callerKey: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    cipher.setAAD(Buffer.from(`${VERSION}\0${callerKey}`));
    const body = Buffer.concat([cipher.update(JSON.stringify(ref), "utf8"), cipher.final()]);
    return `${VERSION}.${Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64url")}`;
  }

  /** The HandOutRef, or undefined when the handle is malformed, altered, or another caller's. */
  open(handle: string, callerKey: string): HandOutRef | undefined {
    if (typeof handle !== "string" || !handle.startsWith(`${VERSION}.`) || handle.length > 4096) return undefined;
    const raw = Buffer.from(handle.slice(VERSION.length + 1), "base64url");
    if (raw.length < IV_BYTES + TAG_BYTES + 2) return undefined;
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(`${VERSION}\0${callerKey}`));
      decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
      const json = Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString("utf8");
      return reviveRef(JSON.parse(json) as Record<string, unknown>);
    } catch {
      return undefined;
    }
  }

  /** A keyed digest of a handed-out token: what the broker keeps instead of the token. */
  digest(callerKey: string, host: string, token: string): string {
    return createHmac("sha256", this.digestKey).update(`${callerKey}\0${host}\0${token}`).digest("base64url");
  }
}

/** Dates travel as ISO strings in JSON; the service expects the ref as it issued it. */
function reviveRef(value: Record<string, unknown>): HandOutRef {
  const ref = { ...value };
  if (typeof ref.reservedUntil === "string") ref.reservedUntil = new Date(ref.reservedUntil);
  return ref as unknown as HandOutRef;
}

/**
 * Release by token, for clients that can only give the token back (git < 2.46 passes nothing else
 * to its credential helper's `store`/`erase`): per caller, keyed digests of handed-out tokens →
 * release handle, kept only until the hand-out's reservation ends. In memory, so it works on the
 * replica that handed the token out; elsewhere the hold simply ends with its reservation.
 */
export class HandOutIndex {
  /** Per caller, per token digest, the hand-outs of that token in the order they were made. */
  private readonly byCaller = new Map<string, Map<string, { handle: string; untilMs: number }[]>>();
  private remembered = 0;

  remember(callerKey: string, digest: string, handle: string, untilMs: number, nowMs: number): void {
    // Now and then sweep every caller: one that never comes back must not keep its entries.
    if (++this.remembered % MAX_DIGESTS_PER_CALLER === 0) {
      for (const [key, entries] of this.byCaller) {
        this.prune(entries, nowMs);
        if (entries.size === 0) this.byCaller.delete(key);
      }
    }
    let mine = this.byCaller.get(callerKey);
    if (!mine) this.byCaller.set(callerKey, (mine = new Map()));
    this.prune(mine, nowMs);
    // Two git processes may hold the same token at once: each release by token releases one hand-out.
    const list = mine.get(digest) ?? [];
    mine.delete(digest); // re-insert: most recently used last
    mine.set(digest, [...list, { handle, untilMs }].slice(-MAX_DIGESTS_PER_CALLER));
    while (mine.size > MAX_DIGESTS_PER_CALLER) mine.delete(mine.keys().next().value!);
  }

  /** A handle for this digest — the hand-out that ends first — removing it (a release is done once). */
  take(callerKey: string, digest: string, nowMs: number): string | undefined {
    const mine = this.byCaller.get(callerKey);
    if (!mine) return undefined;
    this.prune(mine, nowMs);
    const list = mine.get(digest);
    const first = list?.shift();
    if (list && list.length === 0) mine.delete(digest);
    if (mine.size === 0) this.byCaller.delete(callerKey);
    return first?.handle;
  }

  /** Forgets a handle released by handle (so a later release by token does not release twice). */
  forget(callerKey: string, handle: string): void {
    const mine = this.byCaller.get(callerKey);
    if (!mine) return;
    for (const [digest, list] of mine) {
      const rest = list.filter((entry) => entry.handle !== handle);
      if (rest.length === 0) mine.delete(digest);
      else mine.set(digest, rest);
    }
    if (mine.size === 0) this.byCaller.delete(callerKey);
  }

  private prune(mine: Map<string, { untilMs: number }[]>, nowMs: number): void {
    for (const [digest, list] of mine) {
      const live = list.filter((entry) => entry.untilMs > nowMs);
      if (live.length === 0) mine.delete(digest);
      else if (live.length !== list.length) mine.set(digest, live);
    }
  }
}

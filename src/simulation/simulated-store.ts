/**
 * The token store as the simulation sees it: one entry per user, the holders of its current token,
 * and the revocations that cut holders short.
 *
 * The store keeps every hand-out as a hold (per-hand-out reservations). The entry's
 * reservedUntil is derived: the latest promised end (hand-out + L) among holds that are still live
 * (not released, not past their promise). Without early release a hold lives until hand-out + L, so
 * this equals the entry's single extend-only reservation timestamp.
 */
import type { EntryState } from "../refresh-policy";
import { MINUTE_MS } from "./user-kinds";

/** Bitbucket Data Center: access tokens live 60 minutes. */
export const TOKEN_LIFETIME_MS = 60 * MINUTE_MS;

interface Hold {
  /** The promise: hand-out + L. Blocks a non-forced refresh while the hold is live. */
  reserveEndMs: number;
  /** When the holder stops using the token: hand-out + L, or earlier when it releases. */
  holdEndMs: number;
}

interface Entry {
  tokenId: number;
  expiresAtMs: number;
  draining: boolean;
  /** Holds of the current token only: a refresh revokes the old token, so its holds end there. */
  holds: Hold[];
}

/** What a refresh did to the holders of the token it revoked. */
export interface Revocation {
  broken: number;
  lostMs: number;
}

/**
 * @example
 * const store = new SimulatedStore(1);
 * store.refresh(0, 0);                              // first token, expires at 60 min
 * store.handOut(0, 0, 5 * MINUTE_MS, 5 * MINUTE_MS);
 * store.state(0, MINUTE_MS).reservedUntilMs;        // → 300000
 */
export class SimulatedStore {
  private readonly entries: Entry[];
  private nextTokenId = 1;

  /**
   * Every user starts with a stored, refreshable token, by default one that has already expired (the
   * last login was days ago); `initialExpiresAtMs[user]` starts it part-way through its hour instead.
   */
  constructor(users: number, initialExpiresAtMs?: readonly number[]) {
    this.entries = Array.from({ length: users }, (_, user) => ({ tokenId: 0, expiresAtMs: initialExpiresAtMs?.[user] ?? -1, draining: false, holds: [] }));
  }

  /** The entry as decide() sees it at nowMs; drops holds that are over. */
  state(user: number, nowMs: number): EntryState {
    const entry = this.entries[user];
    let reservedUntilMs: number | undefined;
    let live = 0;
    for (const hold of entry.holds) {
      if (hold.holdEndMs <= nowMs) continue; // released or past its promise (holdEnd ≤ reserveEnd)
      entry.holds[live++] = hold;
      if (reservedUntilMs === undefined || hold.reserveEndMs > reservedUntilMs) reservedUntilMs = hold.reserveEndMs;
    }
    entry.holds.length = live;
    return { expiresAtMs: entry.expiresAtMs, reservedUntilMs, refreshable: true, draining: entry.draining };
  }

  /** Records a holder of the current token. Returns false if the token cannot cover the promise (invariant 1 broken). */
  handOut(user: number, nowMs: number, lifetimeMs: number, holdMs: number): boolean {
    const entry = this.entries[user];
    const reserveEndMs = nowMs + lifetimeMs;
    entry.holds.push({ reserveEndMs, holdEndMs: nowMs + Math.min(holdMs, lifetimeMs) });
    return entry.expiresAtMs >= reserveEndMs;
  }

  /** Replaces the token: the SCM revokes the old one at once, breaking every holder not yet done with it. */
  refresh(user: number, nowMs: number): Revocation {
    const entry = this.entries[user];
    let broken = 0;
    let lostMs = 0;
    for (const hold of entry.holds) {
      if (hold.holdEndMs > nowMs) {
        broken++;
        lostMs += hold.holdEndMs - nowMs;
      }
    }
    entry.tokenId = this.nextTokenId++;
    entry.expiresAtMs = nowMs + TOKEN_LIFETIME_MS;
    entry.draining = false;
    entry.holds = [];
    return { broken, lostMs };
  }

  setDraining(user: number): void {
    this.entries[user].draining = true;
  }
}

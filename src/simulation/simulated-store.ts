/**
 * The token store as the simulation sees it: one entry per user, the holders of its current token,
 * and the revocations that cut holders short.
 *
 * Reservations follow the library's store (src/storage/token-store.ts) through the same pure rules
 * (src/hand-out-reservation.ts): a non-releasable hand-out that the token version's pin already
 * covers writes nothing (coveredWithoutWrite); one that must write pins the version until
 * reservationEndMs — now + L plus the slack, never into the refresh window. A releasable hand-out
 * records a hold until now + L that its release ends early. The entry's reservation is
 * max(pin, live holds), as after the store's recomputation on release; a refresh starts a new
 * version with no pin and no holds.
 */
import { coveredWithoutWrite, reservationEndMs } from "../hand-out-reservation";
import type { EntryState } from "../refresh-policy";
import { MINUTE_MS } from "./user-kinds";

/** Bitbucket Data Center: access tokens live 60 minutes. */
export const TOKEN_LIFETIME_MS = 60 * MINUTE_MS;

interface Hold {
  /** Releasable hand-outs only: the promise (hand-out + L), kept in the reservation while the hold is live. */
  reserveEndMs?: number;
  /** When the holder stops using the token: hand-out + L, or earlier when it releases. */
  holdEndMs: number;
}

interface Entry {
  tokenId: number;
  expiresAtMs: number;
  draining: boolean;
  /** The current version's pin: the latest reservation a non-releasable hand-out wrote. */
  pinnedUntilMs?: number;
  /** Holders of the current token only: a refresh revokes the old token, so its holds end there. */
  holds: Hold[];
}

/** What a refresh did to the holders of the token it revoked. */
export interface Revocation {
  broken: number;
  lostMs: number;
}

/** How a hand-out is recorded. */
export interface HandOutMode {
  /** A releasable hand-out (a hold that ends at its release); otherwise a pinned, write-free-capable one. */
  releasable: boolean;
  /** During a drain, decide() said "reuse without extending": reserve exactly now + L, no slack. */
  withinCurrent: boolean;
  /** reservationEndMs's refresh window (refreshWindowMs of the policy). */
  refreshWindowMs: number | undefined;
  /** reservationEndMs's slack fraction. */
  slackFraction: number;
}

/** What a hand-out did. */
export interface HandOutOutcome {
  /** The token covers now + L (invariant 1); false = a short hand-out. */
  covers: boolean;
  /** A non-releasable hand-out the pin already covered: no database write. */
  writeFree: boolean;
  /** When this hand-out's reservation ends (the pin it wrote, or its hold's promise); undefined if write-free. */
  reservedUntilMs?: number;
}

const RELEASABLE: HandOutMode = { releasable: true, withinCurrent: false, refreshWindowMs: undefined, slackFraction: 0 };

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

  /**
   * The entry as decide() sees it at nowMs; drops holds that are over. Like the store's row, the
   * reservation keeps the pin's end after it has passed (a release recomputes it from live
   * reservations only), so decide() can tell how long ago the token was last held.
   */
  state(user: number, nowMs: number): EntryState {
    const entry = this.entries[user];
    let reservedUntilMs = entry.pinnedUntilMs;
    let live = 0;
    for (const hold of entry.holds) {
      if (hold.holdEndMs <= nowMs) continue; // released or past its promise (holdEnd ≤ reserveEnd)
      entry.holds[live++] = hold;
      if (hold.reserveEndMs !== undefined && (reservedUntilMs === undefined || hold.reserveEndMs > reservedUntilMs)) reservedUntilMs = hold.reserveEndMs;
    }
    entry.holds.length = live;
    return { expiresAtMs: entry.expiresAtMs, reservedUntilMs, refreshable: true, draining: entry.draining };
  }

  /**
   * Records a holder of the current token until nowMs + min(holdMs, L), and its reservation as the
   * library's store would write it (or not: write-free). Default mode: releasable, as when holds were
   * all the store knew.
   */
  handOut(user: number, nowMs: number, lifetimeMs: number, holdMs: number, mode: HandOutMode = RELEASABLE): HandOutOutcome {
    const entry = this.entries[user];
    const neededMs = nowMs + lifetimeMs;
    const covers = entry.expiresAtMs >= neededMs;
    const holdEndMs = nowMs + Math.min(holdMs, lifetimeMs);
    if (mode.releasable) {
      entry.holds.push({ reserveEndMs: neededMs, holdEndMs });
      return { covers, writeFree: false, reservedUntilMs: neededMs };
    }
    entry.holds.push({ holdEndMs });
    if (coveredWithoutWrite({ expiresAtMs: entry.expiresAtMs, pinnedUntilMs: entry.pinnedUntilMs, draining: entry.draining }, nowMs, lifetimeMs)) {
      return { covers, writeFree: true };
    }
    const untilMs = mode.withinCurrent ? neededMs : reservationEndMs(nowMs, lifetimeMs, entry, mode.refreshWindowMs, mode.slackFraction);
    entry.pinnedUntilMs = Math.max(entry.pinnedUntilMs ?? untilMs, untilMs);
    return { covers, writeFree: false, reservedUntilMs: untilMs };
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
    entry.pinnedUntilMs = undefined;
    entry.holds = [];
    return { broken, lostMs };
  }

  setDraining(user: number): void {
    this.entries[user].draining = true;
  }
}

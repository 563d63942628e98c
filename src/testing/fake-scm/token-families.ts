import type { Clock } from "../../clock";
import type { FakeScmCounters } from "./counters";
import type { FakeScmProfile } from "./profiles";
import { newFamilyId, newToken } from "./token-formats";

/**
 * The fake SCM's token state: every authorization is a family with a generation
 * counter; each access token (AT) and refresh token (RT) belongs to one family and generation.
 * Rotated RTs stay as tombstones so that a replay is recognised (RFC 6749 §10.4, RFC 9700 §4.14.2).
 * "Expired" is never stored: it is derived from the injected clock on every look-up.
 */

/** What `FakeScmServer.issueTokens()` returns: the result of a simulated authorization-code flow. */
export interface IssuedTokens {
  accessToken: string;
  /** Absent when the profile issues none (GitHub OAuth apps). */
  refreshToken?: string;
  /** Absent when access tokens never expire. */
  expiresAt?: Date;
  scopes: string[];
  familyId: string;
}

/** "rotated": replaced by a refresh (for an AT: revoked by the refresh). */
export type StoredStatus = "active" | "rotated" | "revoked";
export type TokenStatus = StoredStatus | "expired";

interface TokenRecord {
  readonly value: string;
  readonly familyId: string;
  readonly generation: number;
  readonly issuedAt: Date;
  readonly expiresAt: Date | undefined;
  status: StoredStatus;
}

interface AccessTokenRecord extends TokenRecord {
  readonly scopes: readonly string[];
}

export interface RefreshTokenRecord extends TokenRecord {
  /** The AT issued together with this RT (BB DC deletes exactly that one on refresh). */
  pairedAccessToken: string;
  /** How many rotations committed with this RT; > 1 means the family forked. */
  successors: number;
}

interface Family {
  readonly id: string;
  readonly clientId: string;
  readonly userId: string;
  readonly scopes: readonly string[];
  readonly consentedAt: Date;
  revoked: boolean;
  generation: number;
  forked: boolean;
}

/** A refresh token's state at one instant. A tombstone stays "rotated" after its family is revoked, so replays are still recognised. */
export interface RefreshTokenView {
  readonly stored: StoredStatus;
  readonly familyRevoked: boolean;
  readonly expired: boolean;
}

/** A committed refresh: the new tokens plus what the response needs. */
export interface CommittedRefresh {
  readonly accessToken: string;
  readonly refreshToken: string | undefined;
  readonly scopes: readonly string[];
  readonly issuedAt: Date;
}

export class TokenFamilies {
  private readonly families = new Map<string, Family>();
  private readonly accessTokens = new Map<string, AccessTokenRecord>();
  private readonly refreshTokens = new Map<string, RefreshTokenRecord>();

  constructor(
    private readonly profile: FakeScmProfile,
    private readonly clock: Clock,
    private readonly counters: FakeScmCounters,
  ) {}

  /** Starts a new family, as a completed authorization-code flow would. */
  issue(clientId: string, userId: string, scopes: readonly string[]): IssuedTokens {
    const family: Family = {
      id: newFamilyId(),
      clientId,
      userId,
      scopes: [...scopes],
      consentedAt: this.clock.now(),
      revoked: false,
      generation: 0,
      forked: false,
    };
    this.families.set(family.id, family);
    const at = this.mintAccessToken(family, scopes);
    const rt = this.profile.issueRefreshToken ? this.mintRefreshToken(family, at.value) : undefined;
    return {
      accessToken: at.value,
      ...(rt ? { refreshToken: rt.value } : {}),
      ...(at.expiresAt ? { expiresAt: at.expiresAt } : {}),
      scopes: [...scopes],
      familyId: family.id,
    };
  }

  findRefreshToken(value: string): RefreshTokenRecord | undefined {
    return this.refreshTokens.get(value);
  }

  /** Everything validation needs to know about a refresh token, read at one instant (a lookup "snapshot"). */
  refreshTokenView(rt: RefreshTokenRecord): RefreshTokenView {
    return {
      stored: rt.status,
      familyRevoked: this.family(rt.familyId).revoked,
      expired: rt.expiresAt !== undefined && this.clock.now().getTime() >= rt.expiresAt.getTime(),
    };
  }

  familyScopes(rt: RefreshTokenRecord): readonly string[] {
    return this.family(rt.familyId).scopes;
  }

  /** The resource endpoint's view of an access token; undefined if the server never issued it. */
  accessTokenState(value: string): { status: TokenStatus; userId: string } | undefined {
    const at = this.accessTokens.get(value);
    if (!at) return undefined;
    return { status: this.effectiveStatus(at), userId: this.family(at.familyId).userId };
  }

  /**
   * Commits a refresh with `rt` (already validated by the caller): a new generation, a new AT,
   * a new RT if the profile rotates, and the old AT handled per `oldAccessTokenOnRefresh`.
   */
  commitRefresh(rt: RefreshTokenRecord, scopes: readonly string[]): CommittedRefresh {
    const family = this.family(rt.familyId);
    family.generation += 1;
    const oldAccessToken = this.accessTokens.get(rt.pairedAccessToken);
    const at = this.mintAccessToken(family, scopes);

    let refreshToken: string | undefined;
    if (this.profile.rotateRefreshToken) {
      refreshToken = this.mintRefreshToken(family, at.value).value;
      if (rt.status === "active") rt.status = "rotated";
      // A second successor of one RT (TOCTOU race, or an allowed replay) forks the family.
      rt.successors += 1;
      if (rt.successors > 1 && !family.forked) {
        family.forked = true;
        this.counters.forks += 1;
      }
    } else {
      refreshToken = rt.value; // the same RT keeps working, now paired with the new AT
      rt.pairedAccessToken = at.value;
    }

    if (this.profile.oldAccessTokenOnRefresh === "revoke_immediately" && oldAccessToken?.status === "active") {
      oldAccessToken.status = "rotated";
    }
    this.counters.refreshSuccesses += 1;
    return { accessToken: at.value, refreshToken, scopes: at.scopes, issuedAt: at.issuedAt };
  }

  /** The family id of any AT or RT this server issued. */
  familyIdOf(token: string): string | undefined {
    return (this.accessTokens.get(token) ?? this.refreshTokens.get(token))?.familyId;
  }

  /** Kills every AT and RT of the family (the user revoked the app; replay detection). */
  revokeFamily(familyId: string): void {
    const family = this.family(familyId);
    if (family.revoked) return;
    family.revoked = true;
    this.counters.familyRevocations += 1;
    for (const record of [...this.accessTokens.values(), ...this.refreshTokens.values()]) {
      if (record.familyId === familyId && record.status === "active") record.status = "revoked";
    }
  }

  /**
   * RFC 7009 revocation of one token: a refresh token ends its whole family (RFC 7009 §2.1: the server
   * "SHOULD also invalidate all access tokens based on the same authorization grant"); an access token
   * only itself. Returns false for a token this server never issued (the endpoint still answers 200).
   */
  revokeToken(token: string): boolean {
    const rt = this.refreshTokens.get(token);
    if (rt) {
      this.revokeFamily(rt.familyId);
      return true;
    }
    const at = this.accessTokens.get(token);
    if (!at) return false;
    if (at.status === "active") at.status = "revoked";
    return true;
  }

  /** Every family of this server (the admin deleted the client / incoming link, BB DC `removeByClientId`). */
  revokeAll(): void {
    for (const id of this.families.keys()) this.revokeFamily(id);
  }

  private effectiveStatus(record: TokenRecord): TokenStatus {
    if (record.status === "rotated") return "rotated";
    if (record.status === "revoked" || this.family(record.familyId).revoked) return "revoked";
    // A token is valid strictly before its expiry instant; at the instant itself it is dead.
    if (record.expiresAt && this.clock.now().getTime() >= record.expiresAt.getTime()) return "expired";
    return "active";
  }

  private mintAccessToken(family: Family, scopes: readonly string[]): AccessTokenRecord {
    const issuedAt = this.clock.now();
    const record: AccessTokenRecord = {
      value: newToken(this.profile.tokenFormat, "access"),
      familyId: family.id,
      generation: family.generation,
      issuedAt,
      expiresAt: addSeconds(issuedAt, this.profile.accessTokenTtlSeconds),
      status: "active",
      scopes: [...scopes],
    };
    this.accessTokens.set(record.value, record);
    return record;
  }

  private mintRefreshToken(family: Family, pairedAccessToken: string): RefreshTokenRecord {
    const issuedAt = this.clock.now();
    const record: RefreshTokenRecord = {
      value: newToken(this.profile.tokenFormat, "refresh"),
      familyId: family.id,
      generation: family.generation,
      issuedAt,
      // Per-token lifetime from this RT's own creation, so it slides with each rotation (BB DC, GitHub).
      expiresAt: addSeconds(issuedAt, this.profile.refreshTokenTtlSeconds),
      status: "active",
      pairedAccessToken,
      successors: 0,
    };
    this.refreshTokens.set(record.value, record);
    return record;
  }

  private family(id: string): Family {
    const family = this.families.get(id);
    if (!family) throw new Error(`FakeScmServer: internal error, unknown family ${id}`);
    return family;
  }
}

function addSeconds(from: Date, seconds: number | null): Date | undefined {
  return seconds === null ? undefined : new Date(from.getTime() + seconds * 1000);
}

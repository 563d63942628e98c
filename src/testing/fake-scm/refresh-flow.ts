import type { FakeScmCounters } from "./counters";
import type { Release, KeyedLocks } from "./locks";
import type { PausePoints } from "./pause-points";
import type { FakeScmHttpError, FakeScmProfile } from "./profiles";
import type { CommittedRefresh, RefreshTokenRecord, RefreshTokenView, TokenFamilies } from "./token-families";

/**
 * One `grant_type=refresh_token` request after parsing and client authentication:
 *
 *   look up RT → [lock] → validate → afterValidate → commit → [unlock] → afterCommit
 *
 * The caller writes the response (or the injected failure) afterwards.
 */

export interface RefreshInput {
  readonly refreshToken: string;
  readonly redirectUri: string | undefined;
  /** Requested scope (space-separated); may narrow, never widen. */
  readonly scope: string | undefined;
  /** An injected `lock_timeout`: answer as if the lock could not be taken. */
  readonly forceLockTimeout: boolean;
}

export type RefreshOutcome =
  | { readonly kind: "committed"; readonly tokens: CommittedRefresh }
  | { readonly kind: "error"; readonly error: FakeScmHttpError };

type Verdict =
  | { readonly ok: true; readonly scopes: readonly string[]; readonly replay: boolean }
  | { readonly ok: false; readonly error: "invalid_grant" | "invalid_scope"; readonly replay: boolean };

const GLOBAL_LOCK = "global";

const INVALID_SCOPE: FakeScmHttpError = {
  status: 400,
  body: { error: "invalid_scope", error_description: "The requested scope exceeds the scope granted by the resource owner." },
};

export class RefreshFlow {
  constructor(
    private readonly profile: FakeScmProfile,
    private readonly families: TokenFamilies,
    private readonly locks: KeyedLocks,
    private readonly pauses: PausePoints,
    private readonly counters: FakeScmCounters,
    private readonly registeredRedirectUri: string,
  ) {}

  async run(input: RefreshInput): Promise<RefreshOutcome> {
    const rt = this.families.findRefreshToken(input.refreshToken);
    if (!rt) return this.reject({ ok: false, error: "invalid_grant", replay: false }, undefined);

    let release: Release | undefined;
    let view: RefreshTokenView;
    if (this.profile.concurrency === "global_lock") {
      // BB DC looks the RT up *before* taking its global lock: a dead RT fails without the lock.
      const snapshot = this.families.refreshTokenView(rt);
      const early = this.check(snapshot, input, rt);
      if (!early.ok) return this.reject(early, rt);
      if (input.forceLockTimeout) return { kind: "error", error: this.profile.errors.lockTimeout };
      release = await this.locks.acquireWithin(GLOBAL_LOCK, this.profile.globalLockTimeoutMs);
      if (!release) return { kind: "error", error: this.profile.errors.lockTimeout };
      // toctouBothSucceed: validate against the pre-lock snapshot, so a racing twin also wins.
      view = this.profile.toctouBothSucceed ? snapshot : this.families.refreshTokenView(rt);
    } else {
      // Doorkeeper: `refresh_token.lock!` inside a transaction, then check the row.
      release = await this.locks.acquire(rt.familyId);
      if (input.forceLockTimeout) {
        release();
        return { kind: "error", error: this.profile.errors.lockTimeout };
      }
      view = this.families.refreshTokenView(rt);
    }

    let tokens: CommittedRefresh;
    try {
      const verdict = this.check(view, input, rt);
      if (!verdict.ok) return this.reject(verdict, rt);
      if (verdict.replay) this.counters.replays += 1; // replayPolicy "allow"
      await this.pauses.pass("afterValidate");
      tokens = this.families.commitRefresh(rt, verdict.scopes);
    } finally {
      release();
    }
    await this.pauses.pass("afterCommit");
    return { kind: "committed", tokens };
  }

  /** Pure: decides, changes nothing. Side effects happen once, in `reject()` or `run()`. */
  private check(view: RefreshTokenView, input: RefreshInput, rt: RefreshTokenRecord): Verdict {
    let replay = false;
    if (view.stored === "rotated") {
      replay = true;
      if (this.profile.replayPolicy !== "allow") return { ok: false, error: "invalid_grant", replay };
    }
    if (view.stored === "revoked" || view.familyRevoked || view.expired) return { ok: false, error: "invalid_grant", replay };
    // BB DC strict mode (jira.js docs): the registered redirect_uri must be sent on refresh.
    if (this.profile.requireRedirectUri && input.redirectUri !== this.registeredRedirectUri) {
      return { ok: false, error: "invalid_grant", replay };
    }
    const granted = this.families.familyScopes(rt);
    if (input.scope === undefined || input.scope.trim() === "") return { ok: true, scopes: granted, replay };
    const requested = [...new Set(input.scope.split(/[ ,]+/).filter((s) => s !== ""))];
    if (!requested.every((s) => granted.includes(s))) return { ok: false, error: "invalid_scope", replay };
    return { ok: true, scopes: requested, replay };
  }

  private reject(verdict: Verdict & { ok: false }, rt: RefreshTokenRecord | undefined): RefreshOutcome {
    if (verdict.replay) {
      this.counters.replays += 1;
      // RFC 9700 §4.14.2: the server cannot tell thief from owner, so it revokes the whole family.
      if (rt && this.profile.replayPolicy === "reject_and_revoke_family") this.families.revokeFamily(rt.familyId);
    }
    if (verdict.error === "invalid_scope") return { kind: "error", error: INVALID_SCOPE };
    this.counters.invalidGrants += 1;
    return { kind: "error", error: this.profile.errors.invalidGrant };
  }
}

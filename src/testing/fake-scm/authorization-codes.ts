import { createHash, randomBytes } from "node:crypto";
import type { Clock } from "../../clock";

/**
 * The fake SCM's authorization codes (RFC 6749 §4.1.2): single-use, short-lived, bound to the client,
 * the redirect URI and — when the request had one — the PKCE challenge (RFC 7636, S256 only).
 */

export interface AuthorizationCodeGrant {
  readonly userId: string;
  readonly scopes: readonly string[];
}

interface CodeRecord extends AuthorizationCodeGrant {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly codeChallenge: string | undefined;
  readonly expiresAt: number;
  redeemed: boolean;
  /** The token family this code produced (revoked if the code is presented again, RFC 6749 §4.1.2). */
  familyId?: string;
}

export type RedeemOutcome =
  | { readonly ok: true; readonly grant: AuthorizationCodeGrant; readonly bind: (familyId: string) => void }
  | { readonly ok: false; readonly replayedFamilyId?: string };

export class AuthorizationCodes {
  private readonly codes = new Map<string, CodeRecord>();

  constructor(private readonly clock: Clock) {}

  issue(input: { clientId: string; redirectUri: string; codeChallenge: string | undefined; userId: string; scopes: readonly string[]; ttlSeconds: number }): string {
    const code = randomBytes(24).toString("base64url");
    this.codes.set(code, { ...input, scopes: [...input.scopes], expiresAt: this.clock.now().getTime() + input.ttlSeconds * 1000, redeemed: false });
    return code;
  }

  /** Checks everything RFC 6749 §4.1.3 and RFC 7636 §4.6 ask for; a code works once. */
  redeem(code: string, clientId: string, redirectUri: string | undefined, codeVerifier: string | undefined): RedeemOutcome {
    const record = this.codes.get(code);
    if (!record) return { ok: false };
    if (record.redeemed) return { ok: false, replayedFamilyId: record.familyId };
    if (record.clientId !== clientId || record.expiresAt <= this.clock.now().getTime()) return { ok: false };
    // The redirect URI must be sent and identical when the authorization request had one (always, here).
    if (redirectUri !== record.redirectUri) return { ok: false };
    if (record.codeChallenge !== undefined) {
      if (codeVerifier === undefined || createHash("sha256").update(codeVerifier).digest("base64url") !== record.codeChallenge) return { ok: false };
    }
    record.redeemed = true;
    return { ok: true, grant: record, bind: (familyId) => (record.familyId = familyId) };
  }
}

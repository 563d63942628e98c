import type { Clock } from "../clock";
import { TokenServiceError } from "../errors";
import type { Logger } from "../logger";
import type { TokenMetrics } from "../metrics/token-metrics";
import { isAuthorizingProvider, TransientScmError, type ScmProvider, type TokensToRevoke } from "../providers/scm-provider";
import type { TokenStore } from "../storage/token-store";
import type { TokenCrypto } from "../token-crypto";

/** How revoking one host's tokens went. */
export type RevocationResult =
  | "revoked"       // the SCM confirmed
  | "unsupported"   // the SCM offers no revocation (see the provider's `revocation` capability)
  | "failed";       // the SCM failed or refused, or the stored token did not decrypt: logged and counted

export interface HostDisconnect {
  host: string;
  revocation: RevocationResult;
  /** Why it failed: an error class or code, HTTP status or OAuth error — never a token. */
  reason?: string;
}

/** What disconnect() did. */
export interface DisconnectResult {
  /** Stored entries deleted. */
  deleted: number;
  /** One per deleted entry. */
  hosts: HostDisconnect[];
}

export interface DisconnectDeps {
  store: TokenStore;
  crypto: TokenCrypto;
  providers: ReadonlyMap<string, ScmProvider>;
  metrics: TokenMetrics;
  logger: Logger;
  clock: Clock;
  timeoutMs: number;
}

/**
 * Per host: read the entry and decrypt its tokens, delete it, then revoke at the SCM. Deleting comes
 * first so that revocation — a network call that may fail or hang — never blocks or undoes the
 * deletion; a failed revocation is logged (host and reason, never the token) and counted
 * (`scm_token_revocations_total{result="failed"}`).
 */
export async function disconnectHosts(deps: DisconnectDeps, userId: string, hosts: readonly string[]): Promise<DisconnectResult> {
  const result: DisconnectResult = { deleted: 0, hosts: [] };
  for (const host of hosts) {
    const entry = await deps.store.find(userId, host);
    if (!entry || entry.userId !== userId || entry.host !== host) continue;
    let tokens: TokensToRevoke | undefined;
    let decryptFailure: string | undefined;
    try {
      tokens = {
        accessToken: deps.crypto.decrypt("access", userId, host, entry.accessTokenCiphertext),
        refreshToken: entry.refreshTokenCiphertext === undefined ? undefined : deps.crypto.decrypt("refresh", userId, host, entry.refreshTokenCiphertext),
      };
    } catch (e) {
      decryptFailure = e instanceof TokenServiceError ? e.code : "decrypt_error";
    }
    const deleted = await deps.store.delete(userId, host);
    if (deleted === 0) continue; // someone else deleted it meanwhile: theirs to revoke
    result.deleted += deleted;
    const outcome = tokens ? await revoke(deps, host, tokens) : { host, revocation: "failed" as const, reason: decryptFailure };
    if (outcome.revocation === "failed") {
      deps.logger.warn({ host, reason: outcome.reason }, "Token deleted, but revoking it at the SCM failed; it stays valid there until it expires or the user revokes it");
    } else {
      deps.logger.info({ host, revocation: outcome.revocation }, "Token deleted on disconnect");
    }
    deps.metrics.revocation(host, outcome.revocation);
    result.hosts.push(outcome);
  }
  return result;
}

async function revoke(deps: DisconnectDeps, host: string, tokens: TokensToRevoke): Promise<HostDisconnect> {
  const provider = deps.providers.get(host);
  if (!provider || !isAuthorizingProvider(provider) || provider.revocation.kind === "none") return { host, revocation: "unsupported" };
  try {
    const outcome = await provider.revoke(tokens, { now: deps.clock.now(), timeoutMs: deps.timeoutMs });
    return { host, revocation: outcome };
  } catch (e) {
    return { host, revocation: "failed", reason: describe(e) };
  }
}

function describe(e: unknown): string {
  if (e instanceof TransientScmError) return `transient: ${e.status === undefined ? e.detail : `HTTP ${e.status}`}`;
  if (e instanceof TokenServiceError) {
    const fields = e as TokenServiceError & { status?: number; oauthError?: string };
    return [e.code, fields.status !== undefined ? `HTTP ${fields.status}` : undefined, fields.oauthError].filter(Boolean).join(" ");
  }
  return e instanceof Error ? e.name : "unknown error";
}

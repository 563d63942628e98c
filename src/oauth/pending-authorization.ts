/**
 * What is kept server-side between startAuthorization() and the callback, in a take-once secret
 * (encrypted, expiring, usable once): the PKCE code verifier never leaves the server, and the state
 * is bound to the user and host it was issued for.
 */
export interface PendingAuthorization {
  userId: string;
  host: string;
  codeVerifier: string;
  redirectUri: string;
  scopes: string[];
}

const VERSION = 1;

export function encodePending(pending: PendingAuthorization): string {
  return JSON.stringify({ v: VERSION, ...pending });
}

/** undefined when the value is not a pending authorization of this version (it is then treated as unknown). */
export function decodePending(value: string): PendingAuthorization | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof raw !== "object" || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const strings = ["userId", "host", "codeVerifier", "redirectUri"].every((k) => typeof r[k] === "string");
  if (r.v !== VERSION || !strings || !Array.isArray(r.scopes) || !r.scopes.every((s) => typeof s === "string")) return undefined;
  return { userId: r.userId as string, host: r.host as string, codeVerifier: r.codeVerifier as string, redirectUri: r.redirectUri as string, scopes: r.scopes as string[] };
}

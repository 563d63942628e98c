import type { IncomingMessage } from "node:http";

/**
 * Who the caller is and what it may ask for — decided by the embedding server, never by the broker.
 *
 * @example
 * const grant: BrokerGrant = { userId: "user-1", callerId: "workspace-42", hosts: ["bitbucket.example.com"], maxLifetimeMinutes: 30 };
 */
export interface BrokerGrant {
  /** The user whose tokens the caller gets. */
  userId: string;
  /**
   * Identifies the caller (a workspace, an IDE session) for the concurrency limit and for release
   * handles: a handle works only for the caller it was issued to. Default: the user id.
   */
  callerId?: string;
  /** SCM hosts this caller may ask for (as configured on the service, e.g. "gitlab.com"). */
  hosts: readonly string[];
  /** Scopes this caller may ask for; undefined: any. A request for another scope is refused (403). */
  scopes?: readonly string[];
  /** The longest hand-out lifetime this caller may ask for, in minutes (default: the broker's `maxLifetimeMinutes`). */
  maxLifetimeMinutes?: number;
}

/** A refusal with a message for the caller (it is shown to git users: never put a secret in it). */
export interface BrokerRefusal {
  refuse: string;
  /** 401 (default): not authenticated; 403: authenticated but not allowed. */
  status?: 401 | 403;
}

export type BrokerAuthResult = BrokerGrant | BrokerRefusal | null | undefined;

/**
 * The embedding server's authentication hook: reads the request's headers (a bearer token, a
 * client certificate, a session) and returns a grant, a refusal, or nothing (401). It is called
 * before the body is read. A throw answers 500 without the error's message.
 *
 * @example
 * const authenticate: BrokerAuthenticate = async (req) => {
 *   const session = await sessions.byBearer(req.headers.authorization);
 *   return session ? { userId: session.userId, callerId: session.workspaceId, hosts: session.hosts } : { refuse: "unknown or expired workspace token" };
 * };
 */
export type BrokerAuthenticate = (request: IncomingMessage) => BrokerAuthResult | Promise<BrokerAuthResult>;

export function isRefusal(result: BrokerAuthResult): result is BrokerRefusal {
  return typeof result === "object" && result !== null && typeof (result as BrokerRefusal).refuse === "string";
}

/** Reads `Authorization: Bearer <value>`; undefined when absent or another scheme. */
export function bearerToken(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  const match = typeof header === "string" ? /^Bearer[ ]+(\S+)\s*$/i.exec(header) : null;
  return match?.[1];
}

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * panva's oidc-provider (an OpenID Certified authorization server) on 127.0.0.1, configured the way
 * the conformance tests need it: authorization code + PKCE S256, refresh tokens always issued and
 * rotated on every use, reuse detection (a consumed refresh token presented again revokes the whole
 * grant), RFC 7009 revocation and RFC 7662 introspection.
 *
 * There is no browser: the authorization endpoint sends the user agent to `/interaction/{uid}`, which
 * this file answers itself — approving (login + consent in one step) or denying, as the test asked for
 * that `state` — with `provider.interactionFinished`. `authorize(url)` plays the browser: it follows the
 * redirects with a cookie jar and returns the callback URL the SCM would send the user back to.
 *
 * oidc-provider 9 is ESM-only: it is loaded with a real dynamic `import()` (TypeScript's `module:
 * node20` keeps `await import()` as is in CommonJS output).
 */

export const OIDC_CLIENT = { clientId: "conformance-client", clientSecret: "conformance-secret-0123456789abcdef" } as const;
export const OIDC_SCOPES = ["repo:read", "repo:write"] as const;

/** Everything the tests read back from the server: what reached it, counted by its own events. */
export interface OidcCounters {
  /** Successful refresh_token grants. */
  refreshes: number;
  /** Successful authorization_code grants. */
  codeExchanges: number;
  /** Refresh tokens presented again after rotation (oidc-provider then revokes the grant). */
  replays: number;
  /** Grants revoked (replay detection or revocation of a refresh token). */
  grantsRevoked: number;
  /** Token endpoint errors by OAuth error code. */
  grantErrors: Record<string, number>;
}

interface Decision {
  approve: boolean;
  accountId: string;
}

type ProviderInstance = {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  on(event: string, listener: (...args: never[]) => void): void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<{ params: Record<string, unknown>; prompt: { name: string } }>;
  interactionFinished(req: IncomingMessage, res: ServerResponse, result: Record<string, unknown>, options?: { mergeWithLastSubmission?: boolean }): Promise<void>;
  Grant: new (init: { accountId: string; clientId: string }) => { addOIDCScope(scope: string): void; save(): Promise<string> };
};

export class OidcServer {
  readonly counters: OidcCounters = { refreshes: 0, codeExchanges: 0, replays: 0, grantsRevoked: 0, grantErrors: {} };
  private readonly decisions = new Map<string, Decision>();
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly http: Server,
    private readonly provider: ProviderInstance,
    readonly issuer: string,
    readonly redirectUri: string,
  ) {}

  /** Starts the server; `accessTokenTtlSeconds` is the lifetime of every access token it issues. */
  static async start(options: { redirectUri: string; accessTokenTtlSeconds: number }): Promise<OidcServer> {
    const http = createServer();
    await new Promise<void>((resolve, reject) => {
      http.once("error", reject);
      http.listen(0, "127.0.0.1", () => resolve());
    });
    const issuer = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    // A variable specifier: oidc-provider ships no type declarations, and ProviderInstance types what is used.
    const specifier = "oidc-provider";
    // Its start-up warnings (Node 20 is below its supported LTS, the in-memory adapter and development
    // keys are for development) are expected here; keep them out of the test output.
    const warn = console.warn;
    console.warn = (...args: unknown[]) => {
      if (!/^oidc-provider (WARNING|NOTICE)/.test(String(args[0]))) warn(...args);
    };
    let provider: ProviderInstance;
    try {
      const { default: Provider } = (await import(specifier)) as { default: new (issuer: string, config: Record<string, unknown>) => ProviderInstance };
      provider = new Provider(issuer, {
      clients: [
        {
          client_id: OIDC_CLIENT.clientId,
          client_secret: OIDC_CLIENT.clientSecret,
          redirect_uris: [options.redirectUri],
          grant_types: ["authorization_code", "refresh_token"],
          response_types: ["code"],
          token_endpoint_auth_method: "client_secret_post",
        },
      ],
      scopes: [...OIDC_SCOPES],
      findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub }) }),
      features: {
        devInteractions: { enabled: false },
        // A client may revoke only its own tokens (the default policy, without its "should change" notice).
        revocation: { enabled: true, allowedPolicy: (_ctx: unknown, client: { clientId: string }, token: { clientId: string }) => token.clientId === client.clientId },
        introspection: { enabled: true, allowedPolicy: () => true },
      },
      interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
      pkce: { required: () => true },
      rotateRefreshToken: true,
      issueRefreshToken: () => true,
      ttl: { AccessToken: options.accessTokenTtlSeconds, AuthorizationCode: 60, RefreshToken: 86_400, Grant: 86_400, Interaction: 600, Session: 3600 },
      cookies: { keys: ["conformance-cookie-key-0123456789"] },
      });
    } finally {
      console.warn = warn;
    }
    const server = new OidcServer(http, provider, issuer, options.redirectUri);
    server.count();
    const handle = provider.callback();
    http.on("request", (req: IncomingMessage, res: ServerResponse) => {
      if (req.url?.startsWith("/interaction/")) void server.interaction(req, res);
      else handle(req, res);
    });
    http.on("connection", (socket: Socket) => {
      server.sockets.add(socket);
      socket.on("close", () => server.sockets.delete(socket));
    });
    return server;
  }

  get tokenUrl(): string {
    return `${this.issuer}/token`;
  }

  get authorizeUrl(): string {
    return `${this.issuer}/auth`;
  }

  get revocationUrl(): string {
    return `${this.issuer}/token/revocation`;
  }

  /**
   * Plays the browser: follows `authorizationUrl` through the interaction (answered here as asked)
   * to the client's redirect URI, and returns that callback URL (with `code` or `error`, and `state`).
   */
  async authorize(authorizationUrl: string, options: { approve: boolean; accountId?: string }): Promise<string> {
    const state = new URL(authorizationUrl).searchParams.get("state") ?? "";
    this.decisions.set(state, { approve: options.approve, accountId: options.accountId ?? "scm-user" });
    const jar = new Map<string, string>();
    let url = authorizationUrl;
    for (let hop = 0; hop < 10; hop++) {
      const response = await fetch(url, { redirect: "manual", headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; ") } });
      for (const line of response.headers.getSetCookie()) {
        const [pair] = line.split(";");
        const eq = pair!.indexOf("=");
        jar.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
      }
      const body = response.headers.get("location") ? "" : (await response.text()).slice(0, 300);
      if (body === "") await response.body?.cancel().catch(() => undefined);
      const location = response.headers.get("location");
      if (!location) throw new Error(`oidc-provider answered ${response.status} without a redirect at ${new URL(url).pathname}: ${body}`);
      url = new URL(location, url).href;
      if (url.startsWith(this.redirectUri)) return url;
    }
    throw new Error("oidc-provider: too many redirects");
  }

  /** RFC 7662 introspection: is this access or refresh token still active at the server? */
  async isActive(token: string): Promise<boolean> {
    const response = await fetch(`${this.issuer}/token/introspection`, {
      method: "POST",
      body: new URLSearchParams({ token, client_id: OIDC_CLIENT.clientId, client_secret: OIDC_CLIENT.clientSecret }),
    });
    if (response.status !== 200) throw new Error(`introspection answered HTTP ${response.status}`);
    return ((await response.json()) as { active: boolean }).active;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.http.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
  }

  private count(): void {
    const on = (event: string, listener: (ctx: { oidc?: { params?: Record<string, unknown> } }, error?: { error?: string; error_detail?: string }) => void) =>
      this.provider.on(event, listener as (...args: never[]) => void);
    on("grant.success", (ctx) => {
      const grantType = ctx.oidc?.params?.grant_type;
      if (grantType === "refresh_token") this.counters.refreshes += 1;
      if (grantType === "authorization_code") this.counters.codeExchanges += 1;
    });
    on("grant.error", (_ctx, error) => {
      const code = error?.error ?? "unknown";
      this.counters.grantErrors[code] = (this.counters.grantErrors[code] ?? 0) + 1;
      if (error?.error_detail === "refresh token already used") this.counters.replays += 1;
    });
    on("grant.revoked", () => {
      this.counters.grantsRevoked += 1;
    });
  }

  private async interaction(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const details = await this.provider.interactionDetails(req, res);
      const params = details.params;
      const decision = this.decisions.get(String(params.state ?? ""));
      if (!decision?.approve) {
        await this.provider.interactionFinished(req, res, { error: "access_denied", error_description: "The resource owner denied the request." }, { mergeWithLastSubmission: false });
        return;
      }
      const grant = new this.provider.Grant({ accountId: decision.accountId, clientId: String(params.client_id) });
      grant.addOIDCScope(String(params.scope ?? ""));
      const grantId = await grant.save();
      await this.provider.interactionFinished(req, res, { login: { accountId: decision.accountId }, consent: { grantId } }, { mergeWithLastSubmission: false });
    } catch (e) {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(`interaction failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

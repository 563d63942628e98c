import { FakeClock } from "../../src/testing/fake-clock";
import { FakeScmServer } from "../../src/testing/fake-scm";
import { OAuth2Provider } from "../../src/providers/oauth2-provider";
import { OIDC_CLIENT, OidcServer } from "./oidc-server";

/**
 * One authorization server the conformance scenarios run against: panva's oidc-provider (a certified
 * OpenID Provider) or the testing kit's fake SCM with its "generic_oauth2" profile. The scenarios use
 * only this interface, so the same test body runs against both and the fake cannot drift from a
 * real server unnoticed.
 */
export interface ConformanceTarget {
  readonly name: string;
  /** The library's clock: the fake shares it; oidc-provider keeps real time (see `libraryClockOffsetMs`). */
  readonly clock: FakeClock;
  /** Provider options that differ per server (endpoints and client); everything else is the same. */
  readonly endpoints: { tokenUrl: string; authorizeUrl: string; revocationUrl: string; clientId: string; clientSecret: string };
  /** Plays the user at the authorization endpoint; returns the callback URL. */
  authorize(url: string, approve: boolean): Promise<string>;
  /** Would the server accept this access or refresh token now? (introspection / the fake's state) */
  isActive(token: string): Promise<boolean>;
  /** What reached the server: successful refreshes, replayed refresh tokens, revoked grants. */
  counts(): { refreshes: number; replays: number; grantsRevoked: number; codeExchanges: number };
  close(): Promise<void>;
}

export const HOST = "oauth2.example.com";
export const REDIRECT_URI = "http://127.0.0.1:9/oauth/callback";
/** Access tokens live 10 minutes on both servers. */
export const ACCESS_TOKEN_TTL_SECONDS = 600;

/** The library's provider for a target: identical options on both servers, except where the endpoints are. */
export function providerFor(target: ConformanceTarget): OAuth2Provider {
  return new OAuth2Provider({
    host: HOST,
    ...target.endpoints,
    clientAuth: "body",
    // Both servers keep old access tokens until they expire; true is the documented safe choice and
    // the one that enables opportunistic refresh.
    revokesOnRefresh: true,
    redirectUri: REDIRECT_URI,
  });
}

export async function startOidcTarget(): Promise<ConformanceTarget> {
  const server = await OidcServer.start({ redirectUri: REDIRECT_URI, accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS });
  return {
    name: "oidc-provider (certified OpenID Provider)",
    clock: new FakeClock(new Date(), { autoAdvance: true }),
    endpoints: { tokenUrl: server.tokenUrl, authorizeUrl: server.authorizeUrl, revocationUrl: server.revocationUrl, ...OIDC_CLIENT },
    authorize: (url, approve) => server.authorize(url, { approve }),
    isActive: (token) => server.isActive(token),
    counts: () => ({ refreshes: server.counters.refreshes, replays: server.counters.replays, grantsRevoked: server.counters.grantsRevoked, codeExchanges: server.counters.codeExchanges }),
    close: () => server.close(),
  };
}

export async function startFakeTarget(): Promise<ConformanceTarget> {
  const clock = new FakeClock(new Date(), { autoAdvance: true });
  const client = { clientId: "fake-client", clientSecret: "fake-secret" };
  const scm = await FakeScmServer.start({ profile: "generic_oauth2", clock, redirectUri: REDIRECT_URI, ...client, overrides: { accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS } });
  const revocation = scm.profile.revocation;
  if (revocation.kind !== "rfc7009") throw new Error("generic_oauth2 must offer RFC 7009 revocation");
  return {
    name: 'FakeScmServer profile "generic_oauth2"',
    clock,
    endpoints: { tokenUrl: scm.baseUrl + scm.tokenPath, authorizeUrl: scm.baseUrl + scm.profile.authorizePath, revocationUrl: scm.baseUrl + revocation.path, ...client },
    authorize: (url, approve) => Promise.resolve(scm.authorize(url, { approve, userId: "scm-user" })),
    isActive: (token) => Promise.resolve(scm.isAccessTokenLive(token) || scm.refreshTokenStatus(token) === "active"),
    counts: () => ({ refreshes: scm.counters.refreshSuccesses, replays: scm.counters.replays, grantsRevoked: scm.counters.familyRevocations, codeExchanges: scm.counters.codeExchanges }),
    close: () => scm.close(),
  };
}

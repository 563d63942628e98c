import { BitbucketCloudProvider } from "../providers/bitbucket-cloud-provider";
import { BitbucketServerProvider } from "../providers/bitbucket-server-provider";
import { GitHubProvider } from "../providers/github-provider";
import { GitLabProvider } from "../providers/gitlab-provider";
import { OAuth2Provider } from "../providers/oauth2-provider";
import type { ScmProvider } from "../providers/scm-provider";
import type { FakeScmProfileName, FakeScmServer } from "./fake-scm";

const CLIENT = { clientId: "test-client", clientSecret: "test-secret" };

/** The usual host name of each profile's SCM (tokens are stored under it; HTTP goes to the fake). */
export const DEFAULT_TEST_HOSTS: Record<FakeScmProfileName, string> = {
  bitbucket_dc: "bitbucket.example.com",
  gitlab: "gitlab.example.com",
  github_app_user: "github.com",
  github_oauth_app: "github.com",
  bitbucket_cloud: "bitbucket.org",
  rfc9700_strict: "oauth.example.com",
  keeps_old_access_tokens: "gitea.example.com",
  generic_oauth2: "oauth2.example.com",
};

/**
 * The library's provider for a fake SCM's profile, pointed at the fake's baseUrl, exactly as a
 * production configuration would build it (same class, same quirks), except for the URL and the
 * fake's client credentials ("test-client" / "test-secret").
 *
 * Where the real SCM's behaviour is a configuration choice, the choice follows the fake's profile
 * (overrides included): Bitbucket Cloud's `revokesOnRefresh` and the generic OAuth 2.0 servers'
 * `revokesOnRefresh` are true exactly when the profile's `oldAccessTokenOnRefresh` is
 * "revoke_immediately". GitLab, GitHub and Bitbucket DC encode their SCM's fixed behaviour, whatever
 * the fake is told — that is what tests of those providers are for.
 *
 * @example
 * const scm = await FakeScmServer.start({ profile: "gitlab", clock });
 * const provider = providerForFakeScm(scm); // a GitLabProvider for "gitlab.example.com" at scm.baseUrl
 */
export function providerForFakeScm(scm: FakeScmServer, host?: string): ScmProvider {
  const name = scm.profile.name;
  const options = { host: host ?? DEFAULT_TEST_HOSTS[name], baseUrl: scm.baseUrl, ...CLIENT };
  const revokesOnRefresh = scm.profile.oldAccessTokenOnRefresh === "revoke_immediately";
  switch (name) {
    case "bitbucket_dc":
      return new BitbucketServerProvider(options);
    case "gitlab":
      return new GitLabProvider(options);
    case "github_app_user":
      return new GitHubProvider({ ...options, tokenKind: "app_user" });
    case "github_oauth_app":
      return new GitHubProvider({ ...options, tokenKind: "oauth_app" });
    case "bitbucket_cloud":
      return new BitbucketCloudProvider({ ...options, revokesOnRefresh });
    case "rfc9700_strict":
    case "keeps_old_access_tokens":
    case "generic_oauth2":
      return new OAuth2Provider({
        host: options.host,
        tokenUrl: scm.baseUrl + scm.tokenPath,
        authorizeUrl: scm.baseUrl + scm.profile.authorizePath,
        revocationUrl: scm.profile.revocation.kind === "rfc7009" ? scm.baseUrl + scm.profile.revocation.path : undefined,
        ...CLIENT,
        clientAuth: scm.profile.clientAuth.find((m): m is "body" | "basic" => m === "basic" || m === "body") ?? "body",
        revokesOnRefresh,
      });
    default: {
      const unknown: never = name;
      throw new Error(`providerForFakeScm: no provider for profile ${String(unknown)}`);
    }
  }
}

import { BitbucketServerProvider } from "../providers/bitbucket-server-provider";
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
};

/** The library's provider for a fake SCM's profile, pointed at the fake's baseUrl. */
export function providerForFakeScm(scm: FakeScmServer, host?: string): ScmProvider {
  const name = scm.profile.name as FakeScmProfileName;
  const options = { host: host ?? DEFAULT_TEST_HOSTS[name], baseUrl: scm.baseUrl, ...CLIENT };
  switch (name) {
    case "bitbucket_dc":
      return new BitbucketServerProvider(options);
    default:
      throw new Error(`providerForFakeScm: no provider for profile ${name} yet`);
  }
}

import { ScmResponseError } from "../errors";
import { TransientScmError, type RefreshContext } from "./scm-provider";

/**
 * GitHub's "Delete an app authorization": `DELETE {api}/applications/{client_id}/grant` with HTTP
 * Basic (client id and secret) and `{"access_token": "…"}` in a JSON body. It deletes the user's whole
 * authorization of the OAuth or GitHub App — every token of that user for the app, refresh tokens
 * included — and the app disappears from the user's "Authorized applications".
 *
 * 204 = deleted. 404 or 422 = GitHub does not know the access token (expired, already revoked, or
 * another app's): the grant cannot be found through it, reported as ScmResponseError so the caller
 * counts it as a failed revocation (the user can still revoke the app in their GitHub settings).
 */
export async function deleteGitHubGrant(
  apiBaseUrl: URL,
  clientId: string,
  basicAuthorization: () => string,
  accessToken: string,
  host: string,
  context: RefreshContext,
): Promise<void> {
  const url = new URL(`${apiBaseUrl.href.replace(/\/$/, "")}/applications/${encodeURIComponent(clientId)}/grant`);
  let response: Response;
  try {
    response = await fetch(url, {
      method: "DELETE",
      headers: {
        Authorization: basicAuthorization(),
        Accept: "application/vnd.github+json",
        "Content-Type": "application/json",
        "X-GitHub-Api-Version": "2022-11-28",
      },
      body: JSON.stringify({ access_token: accessToken }),
      signal: AbortSignal.timeout(context.timeoutMs),
    });
  } catch (e) {
    throw new TransientScmError(undefined, e instanceof Error ? e.name : "network error", true);
  }
  await response.body?.cancel();
  if (response.status === 204) return;
  if (response.status >= 500 || response.status === 429) throw new TransientScmError(response.status, `HTTP ${response.status}`, true);
  throw new ScmResponseError(host, response.status, response.status === 404 || response.status === 422 ? "GitHub does not know this access token (expired or already revoked)" : "grant deletion refused");
}

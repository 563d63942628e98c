import { InvalidArgumentError } from "../errors";
import { silentLogger, type Logger } from "../logger";
import type { Token } from "../token";
import { checkUserId } from "../validation";
import { checkBundleHosts, extrasEntries, type BundleExtras, type EnvironmentInput } from "./bundle-input";
import { SECRET_LIMITS } from "./limits";
import { NamedSecret } from "./named-secret";
import { NamedSecretsBundle } from "./named-secrets-bundle";
import { ScmTokenMissingError } from "./secret-errors";
import { scmTokenSecretName, scmUsernameSecretName } from "./secret-names";

/** The parts of a handed-out Token that go into a bundle. */
export type WorkspaceStartToken = Pick<Token, "value" | "expiryDate" | "reservedUntilDate" | "username">;

/** The one TokenService method WorkspaceSecrets uses; a TokenService is one (tests and wrappers can pass their own). */
export interface WorkspaceTokenSource {
  getTokenForWorkspaceStart(userId: string, host: string): Promise<WorkspaceStartToken | undefined>;
}

export type { BundleExtras, EnvironmentInput };

/** What a workspace start needs. */
export interface BuildBundleInput {
  userId: string;
  /** SCM hosts to include a token for (each needs a provider and a stored token). */
  hosts: readonly string[];
  extras?: BundleExtras;
}

export interface WorkspaceSecretsOptions {
  /** pino-compatible; gets names and counts, never values. Default silent. */
  logger?: Logger;
}

/**
 * Builds the named-secrets bundle of a workspace start (seed 000: named secrets instead of
 * one-time secrets): one SCM token per host — obtained with `getTokenForWorkspaceStart`, so each
 * is valid and reserved for the clone — plus the optional username, platform token and environment
 * variables, each under a stable name.
 *
 * Names: `scm-token-<host slug>`, `scm-username-<host slug>`, `platform-token`, `env-<NAME>`, where the
 * slug is the lower-cased host with every non-alphanumeric turned into '-'.
 *
 * Limits (see SECRET_LIMITS): at most 32 hosts; at most 256 variables, names POSIX
 * (`[A-Za-z_][A-Za-z0-9_]*`, ≤ 256 characters), values ≤ 64 KiB UTF-8 without NUL; platform token
 * ≤ 16 KiB without control characters; the whole bundle ≤ 1 MiB (one Kubernetes Secret).
 * All input is checked before any token is fetched, so bad input reserves nothing.
 *
 * @example
 * const secrets = new WorkspaceSecrets(tokenService, { logger });
 * const bundle = await secrets.buildBundle({
 *   userId: "user-1",
 *   hosts: ["github.com", "bitbucket.example.com"],
 *   extras: { platformToken, environment: { NPM_TOKEN: npmToken } },
 * });
 * const secret = renderKubernetesSecret(bundle, { name: `ws-${workspaceId}`, namespace: "workspaces" });
 */
export class WorkspaceSecrets {
  private readonly logger: Logger;

  constructor(
    private readonly tokens: WorkspaceTokenSource,
    options: WorkspaceSecretsOptions = {},
  ) {
    this.logger = options.logger ?? silentLogger;
  }

  /**
   * Checks the input, hands out one workspace-start token per host, and returns the bundle.
   *
   * @throws InvalidArgumentError (bad user id, host list, variable name or value, name collision, size),
   *   ScmTokenMissingError (a host without a stored token — the caller decides: prompt or drop the host),
   *   and whatever getTokenForWorkspaceStart throws (ReauthorizationRequiredError, ScmUnavailableError, …)
   * @example
   * const bundle = await secrets.buildBundle({ userId, hosts: ["github.com"] });
   * bundle.get("scm-token-github-com")!.value; // the clone token
   */
  async buildBundle(input: BuildBundleInput): Promise<NamedSecretsBundle> {
    if (typeof input !== "object" || input === null) throw new InvalidArgumentError("input", "buildBundle takes { userId, hosts, extras? }");
    const userId = checkUserId(input.userId);
    const hosts = checkBundleHosts(input.hosts);
    const extras = extrasEntries(input.extras);

    const results = await Promise.allSettled(hosts.map((host) => this.tokens.getTokenForWorkspaceStart(userId, host)));
    const missing: string[] = [];
    const tokens: WorkspaceStartToken[] = [];
    for (const [i, result] of results.entries()) {
      if (result.status === "rejected") throw result.reason;
      if (result.value === undefined) missing.push(hosts[i]);
      else tokens.push(result.value);
    }
    if (missing.length > 0) throw new ScmTokenMissingError(missing);

    const entries: NamedSecret[] = [];
    for (const [i, token] of tokens.entries()) {
      const host = hosts[i];
      entries.push(new NamedSecret({ name: scmTokenSecretName(host), value: token.value, kind: "scm-token", host, expiresAt: token.expiryDate, reservedUntil: token.reservedUntilDate }));
      if (token.username !== undefined) entries.push(new NamedSecret({ name: scmUsernameSecretName(host), value: token.username, kind: "scm-username", host }));
    }
    entries.push(...extras);
    const bundle = new NamedSecretsBundle(entries);
    if (bundle.totalBytes > SECRET_LIMITS.maxBundleBytes) {
      throw new InvalidArgumentError("extras", `the bundle would hold ${bundle.totalBytes} bytes; at most ${SECRET_LIMITS.maxBundleBytes} (1 MiB, one Kubernetes Secret) fit — ship fewer or smaller environment values`);
    }
    this.logger.info({ hosts, names: bundle.names }, "Built workspace secrets bundle");
    return bundle;
  }
}

import { InvalidArgumentError } from "../errors";
import { silentLogger, type Logger } from "../logger";
import type { HandOutRef, Token } from "../token";
import { checkUserId } from "../validation";
import { checkBundleHosts, extrasEntries, type BundleExtras, type EnvironmentInput } from "./bundle-input";
import { SECRET_LIMITS } from "./limits";
import { NamedSecret } from "./named-secret";
import { NamedSecretsBundle } from "./named-secrets-bundle";
import { ScmTokenMissingError } from "./secret-errors";
import { scmTokenSecretName, scmUsernameSecretName } from "./secret-names";

/** The parts of a handed-out Token that go into a bundle (handOut: to release it later). */
export type WorkspaceStartToken = Pick<Token, "value" | "expiryDate" | "reservedUntilDate" | "username"> & Partial<Pick<Token, "handOut">>;

/** The TokenService methods WorkspaceSecrets uses; a TokenService is one (tests and wrappers can pass their own). */
export interface WorkspaceTokenSource {
  getTokenForWorkspaceStart(userId: string, host: string, options?: { releasable?: boolean }): Promise<WorkspaceStartToken | undefined>;
  /** Needed only with `releasable: true`. */
  releaseReservation?(handOut: HandOutRef): Promise<boolean>;
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
  /**
   * Request releasable hand-outs: if building the bundle fails, the tokens already obtained
   * are released at once; after the clone, `releaseBundle(bundle)` lets them be refreshed again.
   * Default false: each token stays reserved for the full workspace-start lifetime.
   */
  releasable?: boolean;
}

/**
 * Builds the named-secrets bundle of a workspace start (named secrets instead of one-time
 * secrets): one SCM token per host — obtained with `getTokenForWorkspaceStart`, so each
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
  private readonly releasable: boolean;
  private readonly handOuts = new WeakMap<NamedSecretsBundle, HandOutRef[]>();

  constructor(
    private readonly tokens: WorkspaceTokenSource,
    options: WorkspaceSecretsOptions = {},
  ) {
    this.logger = options.logger ?? silentLogger;
    this.releasable = options.releasable === true;
    if (this.releasable && typeof tokens.releaseReservation !== "function") {
      throw new InvalidArgumentError("releasable", "releasable: true needs a token source with releaseReservation (a TokenService has it)");
    }
  }

  /**
   * The clone is done: gives back the bundle's SCM token reservations (only for `releasable: true`).
   * Returns how many were released; idempotent.
   *
   * @example
   * await secrets.releaseBundle(bundle); // after the workspace finished cloning
   */
  async releaseBundle(bundle: NamedSecretsBundle): Promise<number> {
    const refs = this.handOuts.get(bundle) ?? [];
    this.handOuts.delete(bundle);
    return this.release(refs);
  }

  private async release(refs: HandOutRef[]): Promise<number> {
    const results = await Promise.allSettled(refs.map((ref) => this.tokens.releaseReservation!(ref)));
    return results.filter((r) => r.status === "fulfilled" && r.value).length;
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

    const results = await Promise.allSettled(hosts.map((host) => this.tokens.getTokenForWorkspaceStart(userId, host, this.releasable ? { releasable: true } : undefined)));
    const obtained = results.flatMap((r) => (r.status === "fulfilled" && r.value?.handOut?.holdId ? [r.value.handOut] : []));
    let bundle: NamedSecretsBundle;
    try {
      bundle = this.assemble(hosts, results, extras);
    } catch (e) {
      // Nothing is handed to the workspace: give back what was reserved for it.
      await this.release(obtained);
      throw e;
    }
    if (obtained.length > 0) this.handOuts.set(bundle, obtained);
    this.logger.info({ hosts, names: bundle.names }, "Built workspace secrets bundle");
    return bundle;
  }

  private assemble(hosts: readonly string[], results: PromiseSettledResult<WorkspaceStartToken | undefined>[], extras: NamedSecret[]): NamedSecretsBundle {
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
    return bundle;
  }
}

import { InvalidArgumentError } from "../errors";
import { checkSecretString } from "../validation";
import { SECRET_LIMITS } from "./limits";
import { NamedSecret } from "./named-secret";
import { checkEnvName, envSecretName, hostSlug, PLATFORM_TOKEN_SECRET_NAME, scmTokenSecretName } from "./secret-names";

/** Input checks of WorkspaceSecrets.buildBundle; each throws InvalidArgumentError before any token is fetched, never echoing a value. */

/** Environment variables as a map, or as a list (where duplicates are possible and rejected). */
export type EnvironmentInput = Readonly<Record<string, string>> | ReadonlyArray<{ readonly name: string; readonly value: string }>;

/** The non-SCM secrets of a bundle. */
export interface BundleExtras {
  /** The platform's own API token (shipped as "platform-token"). */
  platformToken?: string;
  /** The user's environment variables (shipped as "env-<NAME>"). */
  environment?: EnvironmentInput;
}

/**
 * The host list of a bundle: at most 32 host names, trimmed and lower-cased like the token service
 * does, each once, and no two whose entry names would collide.
 * @example checkBundleHosts(["GitHub.com"]); // ["github.com"]
 */
export function checkBundleHosts(hosts: unknown): string[] {
  if (!Array.isArray(hosts) || hosts.length > SECRET_LIMITS.maxHosts) {
    throw new InvalidArgumentError("hosts", `hosts must be an array of at most ${SECRET_LIMITS.maxHosts} host names (it may be empty)`);
  }
  const bySlug = new Map<string, string>();
  return hosts.map((raw: unknown, i) => {
    if (typeof raw !== "string" || raw.trim() === "" || raw.length > 255 || /[\s\u0000-\u001f\u007f]/.test(raw.trim())) {
      throw new InvalidArgumentError(`hosts[${i}]`, `hosts[${i}] must be a host name of at most 255 characters without spaces, e.g. "github.com"`);
    }
    const host = raw.trim().toLowerCase();
    const slug = hostSlug(host);
    const earlier = bySlug.get(slug);
    if (earlier === host) throw new InvalidArgumentError(`hosts[${i}]`, `hosts lists ${host} twice; list each host once`);
    if (earlier !== undefined) {
      throw new InvalidArgumentError(
        `hosts[${i}]`,
        `hosts ${earlier} and ${host} would both be named "${scmTokenSecretName(host)}" (non-alphanumerics become '-'); build separate bundles for them`,
      );
    }
    bySlug.set(slug, host);
    return host;
  });
}

/**
 * The platform token and environment variables as bundle entries, checked against SECRET_LIMITS.
 * @example extrasEntries({ platformToken, environment: { NPM_TOKEN: "…" } }); // [platform-token, env-NPM_TOKEN]
 */
export function extrasEntries(extras: BundleExtras | undefined): NamedSecret[] {
  if (extras === undefined) return [];
  if (typeof extras !== "object" || extras === null) throw new InvalidArgumentError("extras", "extras must be an object { platformToken?, environment? }");
  const entries: NamedSecret[] = [];
  if (extras.platformToken !== undefined) {
    entries.push(new NamedSecret({ name: PLATFORM_TOKEN_SECRET_NAME, value: checkSecretString(extras.platformToken, "extras.platformToken"), kind: "platform-token" }));
  }
  let total = entries.reduce((sum, e) => sum + e.byteLength, 0);
  const seen = new Set<string>();
  const variables = environmentList(extras.environment);
  if (variables.length > SECRET_LIMITS.maxEnvVariables) {
    throw new InvalidArgumentError("extras.environment", `extras.environment has ${variables.length} variables; at most ${SECRET_LIMITS.maxEnvVariables} are allowed`);
  }
  for (const [i, variable] of variables.entries()) {
    const argument = `extras.environment[${i}]`;
    if (typeof variable !== "object" || variable === null) throw new InvalidArgumentError(argument, `${argument} must be { name, value }`);
    const name = checkEnvName(variable.name, argument);
    if (seen.has(name)) throw new InvalidArgumentError(argument, `environment variable ${name} is given twice; give each variable once`);
    seen.add(name);
    const value: unknown = variable.value;
    // Never echo the value: it is a secret.
    if (typeof value !== "string" || value.includes("\u0000") || Buffer.byteLength(value, "utf8") > SECRET_LIMITS.maxEnvValueBytes) {
      throw new InvalidArgumentError(argument, `the value of environment variable ${name} must be a string of at most ${SECRET_LIMITS.maxEnvValueBytes} bytes (UTF-8) without NUL characters`);
    }
    total += Buffer.byteLength(value, "utf8");
    entries.push(new NamedSecret({ name: envSecretName(name), value, kind: "env", envName: name }));
  }
  if (total > SECRET_LIMITS.maxBundleBytes) {
    throw new InvalidArgumentError("extras", `the extras hold ${total} bytes; a bundle may hold at most ${SECRET_LIMITS.maxBundleBytes} (1 MiB, one Kubernetes Secret) — ship fewer or smaller environment values`);
  }
  return entries;
}

function environmentList(environment: EnvironmentInput | undefined): ReadonlyArray<{ readonly name: unknown; readonly value: unknown }> {
  if (environment === undefined) return [];
  if (Array.isArray(environment)) return environment;
  if (typeof environment !== "object" || environment === null) throw new InvalidArgumentError("extras.environment", "extras.environment must be an object { NAME: value } or an array of { name, value }");
  return Object.entries(environment).map(([name, value]) => ({ name, value }));
}

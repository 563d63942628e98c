import { InvalidArgumentError } from "../errors";
import { SECRET_LIMITS } from "./limits";

/**
 * Stable, deterministic names of bundle entries. The same input always yields the same names, so
 * the workspace side can find its secrets by name, and every name is a valid Kubernetes
 * data key. Host names map non-alphanumerics to '-', so distinct hosts can collide
 * ("git.example.com" and "git-example.com"); WorkspaceSecrets detects that and refuses.
 */

/** Name of the platform (e.g. Gitpod API) token entry. */
export const PLATFORM_TOKEN_SECRET_NAME = "platform-token";

const POSIX_ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** "GitHub.com:8443" → "github-com-8443". @example hostSlug("bitbucket.example.com") // "bitbucket-example-com" */
export function hostSlug(host: string): string {
  return host.trim().toLowerCase().replace(/[^a-z0-9]/g, "-");
}

/** @example scmTokenSecretName("github.com") // "scm-token-github-com" */
export function scmTokenSecretName(host: string): string {
  return `scm-token-${hostSlug(host)}`;
}

/** @example scmUsernameSecretName("github.com") // "scm-username-github-com" */
export function scmUsernameSecretName(host: string): string {
  return `scm-username-${hostSlug(host)}`;
}

/** @example envSecretName("NPM_TOKEN") // "env-NPM_TOKEN" */
export function envSecretName(variable: string): string {
  return `env-${variable}`;
}

/**
 * A POSIX environment-variable name: `[A-Za-z_][A-Za-z0-9_]*`, at most 256 characters.
 * @example checkEnvName("NPM_TOKEN", "environment");
 */
export function checkEnvName(name: unknown, argument: string): string {
  if (typeof name !== "string" || name.length === 0 || name.length > SECRET_LIMITS.maxEnvNameLength || !POSIX_ENV_NAME.test(name)) {
    const shown = typeof name === "string" ? JSON.stringify(name.slice(0, 60)) : typeof name;
    throw new InvalidArgumentError(
      argument,
      `environment variable name ${shown} is invalid: use 1 to ${SECRET_LIMITS.maxEnvNameLength} characters matching [A-Za-z_][A-Za-z0-9_]* (POSIX), e.g. "NPM_TOKEN"`,
    );
  }
  return name;
}

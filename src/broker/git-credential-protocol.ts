/**
 * git's credential helper protocol (gitcredentials(7), git-credential(1)): `key=value` lines on
 * stdin until a blank line or the end; keys ending in `[]` may repeat. The helper answers in the
 * same form on stdout.
 */
export interface GitCredentialInput {
  /** Single-valued attributes (protocol, host, path, username, password, password_expiry_utc, …). */
  values: Map<string, string>;
  /** Multi-valued attributes, without the `[]` (capability, state, wwwauth). */
  lists: Map<string, string[]>;
}

/** The prefix of this helper's `state[]` values (git ≥ 2.46 passes them back on store/erase). */
export const STATE_PREFIX = "scm-token-service:release=";

export function parseGitCredentialInput(text: string): GitCredentialInput {
  const values = new Map<string, string>();
  const lists = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const clean = line.replace(/\r$/, "");
    if (clean === "") break;
    const eq = clean.indexOf("=");
    if (eq <= 0) continue; // git never sends such a line; ignore rather than fail
    const key = clean.slice(0, eq);
    const value = clean.slice(eq + 1);
    if (key.endsWith("[]")) {
      const name = key.slice(0, -2);
      // An empty value resets the list (git's rule for multi-valued attributes).
      if (value === "") lists.set(name, []);
      else lists.set(name, [...(lists.get(name) ?? []), value]);
    } else {
      values.set(key, value);
    }
  }
  return { values, lists };
}

/** Formats attributes for git; refuses values git would misread (a newline or NUL would inject attributes). */
export function formatGitCredentialOutput(attributes: ReadonlyArray<readonly [string, string]>): string {
  let out = "";
  for (const [key, value] of attributes) {
    if (/[\n\0]/.test(key) || /[\n\0]/.test(value) || key.includes("=")) throw new Error(`the ${key.replace(/[^\w[\]]/g, "?")} attribute contains a character git's credential protocol cannot carry`);
    out += `${key}=${value}\n`;
  }
  return out;
}

/** The release handle this helper put into `state[]` on `get`, if git passed it back. */
export function releaseHandleFromState(input: GitCredentialInput): string | undefined {
  const state = (input.lists.get("state") ?? []).find((s) => s.startsWith(STATE_PREFIX));
  return state?.slice(STATE_PREFIX.length);
}

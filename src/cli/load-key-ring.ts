import { readFileSync } from "node:fs";
import { KeyRing, type EncryptionKey } from "../crypto/key-ring";
import { ConfigurationError } from "../errors";
import { usageError } from "./cli-error";

export const KEYS_EXAMPLE = `[{"id":"2026-02","key":"<base64 of 32 bytes>","primary":true},{"id":"2025-08","key":"<base64 of 32 bytes>"}]`;

/** A validated key ring and the ids in it (ids are not secret; keys never leave this module's callers). */
export interface LoadedKeys {
  ring: KeyRing;
  ids: ReadonlySet<string>;
  primaryId: string;
}

/**
 * Reads the key ring for rotate-keys from `--keys-file` (a JSON file) or else the environment
 * variable SCM_TOKEN_KEYS, both a JSON array `[{ "id", "key", "primary"? }]` as the library's
 * `encryptionKeys` option takes it. Every problem is a usage error (exit 2) that names the entry
 * and the fix; no message ever quotes key material (JSON.parse's own messages can, so they are
 * replaced).
 */
export function loadKeyRing(keysFile: string | undefined, env: Readonly<Record<string, string | undefined>>): LoadedKeys {
  let source: string;
  let text: string;
  if (keysFile !== undefined) {
    source = `--keys-file ${keysFile}`;
    try {
      text = readFileSync(keysFile, "utf8");
    } catch (e) {
      throw usageError(`cannot read ${source} (${(e as NodeJS.ErrnoException).code ?? "error"}): check the path and permissions`);
    }
  } else if (env.SCM_TOKEN_KEYS !== undefined && env.SCM_TOKEN_KEYS.trim() !== "") {
    source = "SCM_TOKEN_KEYS";
    text = env.SCM_TOKEN_KEYS;
  } else {
    throw usageError(`no encryption keys given: set SCM_TOKEN_KEYS='${KEYS_EXAMPLE}' or pass --keys-file keys.json with that content (the primary key is the one rows are rotated to)`);
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw usageError(`${source} is not valid JSON; expected an array like ${KEYS_EXAMPLE}`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0) {
    throw usageError(`${source} must be a non-empty JSON array like ${KEYS_EXAMPLE}`);
  }
  const keys: EncryptionKey[] = parsed.map((entry: unknown, i) => {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw usageError(`${source}[${i}] must be an object { "id", "key", "primary"? }`);
    const { id, key, primary } = entry as Record<string, unknown>;
    if (typeof id !== "string") throw usageError(`${source}[${i}].id must be a string (1-64 characters of A-Z a-z 0-9 . _ -)`);
    if (typeof key !== "string") throw usageError(`${source}[${i}] ("${id}"): "key" must be a string, the base64 of 32 random bytes (openssl rand -base64 32)`);
    if (primary !== undefined && typeof primary !== "boolean") throw usageError(`${source}[${i}] ("${id}"): "primary" must be true or false`);
    return { id, key, primary };
  });
  const lower = new Map<string, string>();
  for (const { id } of keys) {
    const clash = lower.get(id.toLowerCase());
    // MySQL compares the ciphertext prefixes case-insensitively, so such ids cannot be told apart there.
    if (clash !== undefined && clash !== id) throw usageError(`${source}: key ids "${clash}" and "${id}" differ only in case; rename one`);
    lower.set(id.toLowerCase(), id);
  }
  let ring: KeyRing;
  try {
    ring = new KeyRing(keys);
  } catch (e) {
    if (e instanceof ConfigurationError) throw usageError(`${source}: ${e.message.replace(/^scm-token-service: /, "")}`);
    throw e;
  }
  return { ring, ids: new Set(keys.map((k) => k.id)), primaryId: ring.primaryId };
}

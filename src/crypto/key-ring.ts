import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { ConfigurationError, DecryptionError } from "../errors";

/** One encryption key: 32 random bytes, base64-encoded, with an id that is stored beside each ciphertext. */
export interface EncryptionKey {
  id: string;
  /** base64 of exactly 32 bytes (e.g. `openssl rand -base64 32`). */
  key: string;
  /** The key new ciphertexts are written with. Exactly one key is primary; if none is marked, the first is. */
  primary?: boolean;
}

const FORMAT = "v1";
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const KEY_FIELDS = ["id", "key", "primary"];

/**
 * Node's base64 decoder skips characters it does not know and stops at stray padding, so a key
 * with text appended (`KEY + "oops"`, a pasted comment) would decode to the same 32 bytes and be
 * accepted as that key. Strict instead: the text must be exactly the canonical base64 (padded) or
 * base64url (unpadded) encoding of the bytes it decodes to. Undefined when it is neither.
 */
function decodeKey(key: unknown): Buffer | undefined {
  if (typeof key !== "string") return undefined;
  const standard = Buffer.from(key, "base64");
  if (standard.toString("base64") === key) return standard;
  const url = Buffer.from(key, "base64url");
  if (url.toString("base64url") === key) return url;
  return undefined;
}

/**
 * AES-256-GCM with a key ring. The primary key encrypts; every key in the ring decrypts, chosen by
 * the key id stored in the ciphertext, so keys can rotate without a flag day. The additional
 * authenticated data binds a ciphertext to its row and column: a token copied into another user's
 * row does not decrypt.
 *
 * Ciphertext format: `v1:<keyId>:<iv>:<tag>:<data>` (base64url parts).
 *
 * @example
 * const ring = new KeyRing([{ id: "k1", key: process.env.TOKEN_KEY! }]);
 * const c = ring.encrypt("secret", "access:user-1:bitbucket.example.com");
 * ring.decrypt(c, "access:user-1:bitbucket.example.com"); // "secret"
 */
export class KeyRing {
  readonly #keys = new Map<string, Buffer>();
  readonly primaryId: string;

  constructor(keys: readonly EncryptionKey[]) {
    if (!Array.isArray(keys) || keys.length === 0) {
      throw new ConfigurationError("encryptionKeys is empty: pass at least one { id, key } with key = base64 of 32 random bytes (openssl rand -base64 32)", "encryptionKeys");
    }
    for (const [i, k] of keys.entries()) {
      if (typeof k?.id !== "string" || !KEY_ID.test(k.id)) {
        throw new ConfigurationError(`encryption key id ${JSON.stringify(k?.id)} is invalid: use 1-64 characters of A-Z a-z 0-9 . _ -`, `encryptionKeys[${i}].id`);
      }
      const typo = Object.keys(k).find((field) => !KEY_FIELDS.includes(field));
      if (typo !== undefined) {
        throw new ConfigurationError(`encryption key "${k.id}" has an unknown field "${typo.slice(0, 40)}" (a typo?); the fields are ${KEY_FIELDS.join(", ")}`, `encryptionKeys[${i}].${typo.slice(0, 40)}`);
      }
      if (this.#keys.has(k.id)) throw new ConfigurationError(`encryption key id "${k.id}" appears twice in encryptionKeys`, `encryptionKeys[${i}].id`);
      const bytes = decodeKey(k.key);
      if (bytes?.length !== 32) {
        throw new ConfigurationError(
          bytes
            ? `encryption key "${k.id}" must be base64 of exactly 32 bytes (got ${bytes.length}); generate one with: openssl rand -base64 32`
            : `encryption key "${k.id}" must be base64 of exactly 32 bytes and nothing else: it is not exact base64 or base64url (stray characters, spaces or a newline around or inside it?); generate one with: openssl rand -base64 32`,
          `encryptionKeys[${i}].key`,
        );
      }
      this.#keys.set(k.id, bytes);
    }
    for (const [i, k] of keys.entries()) {
      if (k.primary !== undefined && typeof k.primary !== "boolean") {
        throw new ConfigurationError(`encryption key "${k.id}": primary must be true or false (or left out)`, `encryptionKeys[${i}].primary`);
      }
    }
    const primaries = keys.filter((k) => k.primary);
    if (primaries.length > 1) throw new ConfigurationError(`more than one encryption key is marked primary (${primaries.map((k) => k.id).join(", ")}): mark exactly one`, "encryptionKeys");
    this.primaryId = (primaries[0] ?? keys[0]).id;
  }

  encrypt(plaintext: string, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.#keys.get(this.primaryId)!, iv);
    cipher.setAAD(Buffer.from(context, "utf8"));
    const data = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return [FORMAT, this.primaryId, iv.toString("base64url"), cipher.getAuthTag().toString("base64url"), data.toString("base64url")].join(":");
  }

  decrypt(ciphertext: string, context: string): string {
    const parts = ciphertext.split(":");
    if (parts.length !== 5 || parts[0] !== FORMAT) throw new DecryptionError("a stored token is not in the v1 ciphertext format; was the row written by another tool?");
    const [, keyId, iv, tag, data] = parts;
    const key = this.#keys.get(keyId);
    if (!key) throw new DecryptionError(`a stored token was encrypted with key "${keyId}", which is not in encryptionKeys; add that key to the ring (it may stay non-primary)`);
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
      decipher.setAAD(Buffer.from(context, "utf8"));
      decipher.setAuthTag(Buffer.from(tag, "base64url"));
      return Buffer.concat([decipher.update(Buffer.from(data, "base64url")), decipher.final()]).toString("utf8");
    } catch {
      throw new DecryptionError(`a stored token failed authentication under key "${keyId}": the key is wrong or the row was altered or moved`);
    }
  }

  /** The key id a ciphertext was written with (for re-encryption on rotation). */
  static keyIdOf(ciphertext: string): string | undefined {
    const parts = ciphertext.split(":");
    return parts.length === 5 ? parts[1] : undefined;
  }
}

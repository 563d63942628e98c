import type { KeyRing } from "./crypto/key-ring";
import { RecentPlaintexts } from "./crypto/recent-plaintexts";

/** How many decrypted access tokens a service keeps by default (TokenServiceOptions.decryptedTokenCacheSize). */
export const DEFAULT_DECRYPTED_TOKEN_CACHE_SIZE = 10_000;

/**
 * Encrypts the two token columns, binding each ciphertext to its column, user and host (AAD), so a
 * ciphertext copied into another row or column fails to decrypt instead of leaking a token.
 *
 * Decrypt with the identity the caller asked for (the userId and normalised host passed to the
 * public method), not with the row's: then a row that is not the caller's — however a lookup found
 * it — fails with DecryptionError instead of being handed out. The identity is bound byte for byte
 * (JSON of the exact strings): no case folding or Unicode normalisation, like the lookups.
 */
export class TokenCrypto {
  readonly #recent: RecentPlaintexts;

  /** `cacheSize`: how many decrypted access tokens to keep (0: none), see RecentPlaintexts. */
  constructor(
    private readonly keyRing: KeyRing,
    cacheSize = 0,
  ) {
    this.#recent = new RecentPlaintexts(cacheSize);
  }

  encrypt(kind: "access" | "refresh", userId: string, host: string, plaintext: string): string {
    return this.keyRing.encrypt(plaintext, context(kind, userId, host));
  }

  /** @throws DecryptionError when the key is not in the ring or the ciphertext is not this (kind, userId, host)'s */
  decrypt(kind: "access" | "refresh", userId: string, host: string, ciphertext: string): string {
    const aad = context(kind, userId, host);
    // Refresh tokens (long-lived, decrypted only to refresh) are never kept.
    if (kind === "refresh") return this.keyRing.decrypt(ciphertext, aad);
    const known = this.#recent.get(aad, ciphertext);
    if (known !== undefined) return known;
    const plaintext = this.keyRing.decrypt(ciphertext, aad);
    this.#recent.remember(aad, ciphertext, plaintext);
    return plaintext;
  }
}

function context(kind: string, userId: string, host: string): string {
  return JSON.stringify([kind, userId, host]);
}

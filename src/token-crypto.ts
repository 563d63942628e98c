import type { KeyRing } from "./crypto/key-ring";

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
  constructor(private readonly keyRing: KeyRing) {}

  encrypt(kind: "access" | "refresh", userId: string, host: string, plaintext: string): string {
    return this.keyRing.encrypt(plaintext, context(kind, userId, host));
  }

  /** @throws DecryptionError when the key is not in the ring or the ciphertext is not this (kind, userId, host)'s */
  decrypt(kind: "access" | "refresh", userId: string, host: string, ciphertext: string): string {
    return this.keyRing.decrypt(ciphertext, context(kind, userId, host));
  }
}

function context(kind: string, userId: string, host: string): string {
  return JSON.stringify([kind, userId, host]);
}

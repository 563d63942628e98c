import type { KeyRing } from "./crypto/key-ring";

/**
 * Encrypts the two token columns, binding each ciphertext to its column, user and host (AAD), so a
 * ciphertext copied into another row or column fails to decrypt instead of leaking a token.
 */
export class TokenCrypto {
  constructor(private readonly keyRing: KeyRing) {}

  encrypt(kind: "access" | "refresh", userId: string, host: string, plaintext: string): string {
    return this.keyRing.encrypt(plaintext, context(kind, userId, host));
  }

  decrypt(kind: "access" | "refresh", userId: string, host: string, ciphertext: string): string {
    return this.keyRing.decrypt(ciphertext, context(kind, userId, host));
  }
}

function context(kind: string, userId: string, host: string): string {
  return JSON.stringify([kind, userId, host]);
}

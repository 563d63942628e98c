import { createDecipheriv } from "node:crypto";
import { toSqlDate } from "../../src/storage/sql-values";

/**
 * The baselines' decrypt: AES-256-GCM of the library's ciphertext format, `v1:<keyId>:<iv>:<tag>:<data>`
 * (base64url parts), AAD = the row/column context. The same work the library does per hand-out,
 * without its key-ring and format checks.
 */
export class BaselineDecrypt {
  private readonly keys: ReadonlyMap<string, Buffer>;

  /** `keys`: id → base64 of 32 bytes, the same ring the library got. */
  constructor(keys: readonly { id: string; key: string }[]) {
    this.keys = new Map(keys.map((k) => [k.id, Buffer.from(k.key, "base64")]));
  }

  accessToken(ciphertext: string, userId: string, host: string): string {
    const [format, keyId, iv, tag, data] = ciphertext.split(":");
    const key = this.keys.get(keyId);
    if (format !== "v1" || !key) throw new Error("baseline: unexpected ciphertext");
    const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
    decipher.setAAD(Buffer.from(JSON.stringify(["access", userId, host]), "utf8"));
    decipher.setAuthTag(Buffer.from(tag, "base64url"));
    return Buffer.concat([decipher.update(Buffer.from(data, "base64url")), decipher.final()]).toString("utf8");
  }
}

/** `YYYY-MM-DD HH:MM:SS.mmm` UTC, the store's date format, spelled by the library's own formatter (the fastest we have). */
export function sqlDate(ms: number): string {
  return toSqlDate(new Date(ms));
}

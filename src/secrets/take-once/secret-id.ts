import { randomBytes } from "node:crypto";
import { InvalidArgumentError } from "../../errors";

const ID = /^[0-9a-f]{64}$/;

/**
 * A new take-once secret id: 32 random bytes (256 bits) as lowercase hex, 64 characters.
 * Unguessable, so knowing the id is the capability to take the secret — treat it like the secret in logs.
 *
 * Why hex and not base64url: MySQL/MariaDB compare varchar columns with the table's collation, by
 * default case-insensitive (utf8mb4_general_ci), so "aB…" and "Ab…" would name the same row.
 * Lowercase hex has one spelling per id on every database.
 *
 * @example
 * newSecretId(); // "3f9a…" (64 characters)
 */
export function newSecretId(): string {
  return randomBytes(32).toString("hex");
}

/**
 * Checks that `id` has the shape newSecretId() produces; never echoes it in the error.
 * @example checkSecretId(id); // throws InvalidArgumentError for "", "abc", a UUID, upper-case hex, …
 */
export function checkSecretId(id: unknown): string {
  if (typeof id !== "string" || !ID.test(id)) {
    throw new InvalidArgumentError("id", "id must be the 64-character lowercase hex id that create() returned");
  }
  return id;
}

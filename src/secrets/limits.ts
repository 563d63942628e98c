/**
 * The size limits of the secrets module, in one place so that callers can document and test them.
 *
 * Why these numbers:
 * - `maxBundleBytes` is Kubernetes' own limit for one Secret (the sum of the decoded values,
 *   `MaxSecretSize` = 1 MiB), so every bundle WorkspaceSecrets builds can be rendered as one Secret.
 * - `maxEnvValueBytes` (64 KiB) is far above any sane environment variable and keeps one variable
 *   from eating the Secret; `maxEnvVariables` (256) bounds the number of files and keys.
 * - `maxPlatformTokenChars` matches the token limit of `storeToken` (16 KiB).
 * - `maxTakeOnceValueBytes` (32 KiB) keeps the encrypted, base64url ciphertext (4/3 of the value plus
 *   about 110 characters of header) inside a MySQL `TEXT` column (65,535 bytes).
 * - `maxTakeOnceExpiresInMs` (24 h) is the default ceiling for a take-once secret.
 *
 * @example
 * if (Buffer.byteLength(value, "utf8") > SECRET_LIMITS.maxEnvValueBytes) splitIntoFiles(value);
 */
export const SECRET_LIMITS = {
  maxBundleBytes: 1_048_576,
  maxEnvVariables: 256,
  maxEnvNameLength: 256,
  maxEnvValueBytes: 64 * 1024,
  maxPlatformTokenChars: 16 * 1024,
  maxHosts: 32,
  maxTakeOnceValueBytes: 32 * 1024,
  minTakeOnceExpiresInMs: 1_000,
  maxTakeOnceExpiresInMs: 24 * 60 * 60 * 1000,
  /** Kubernetes: a Secret's data values may total at most 1 MiB (`MaxSecretSize`). */
  maxKubernetesSecretBytes: 1_048_576,
} as const;

/**
 * Secrets for workspace start: named-secrets bundles, Kubernetes Secret and projected-volume
 * rendering, and expiring take-once secrets with loud deletion and a reaper. Re-exported from the
 * package root; the README's "Secrets for workspace start" section shows them together.
 *
 * @example
 * import { WorkspaceSecrets, renderKubernetesSecret, renderSecretVolume, toYaml, TakeOnceSecrets } from "scm-token-service";
 */
export { WorkspaceSecrets, type BuildBundleInput, type BundleExtras, type EnvironmentInput, type WorkspaceSecretsOptions, type WorkspaceStartToken, type WorkspaceTokenSource } from "./workspace-secrets";
export { NamedSecretsBundle } from "./named-secrets-bundle";
export { NamedSecret, type NamedSecretInit, type NamedSecretKind } from "./named-secret";
export { PLATFORM_TOKEN_SECRET_NAME, checkEnvName, envSecretName, hostSlug, scmTokenSecretName, scmUsernameSecretName } from "./secret-names";
export { SECRET_LIMITS } from "./limits";
export { ScmTokenMissingError, SecretNotFoundError } from "./secret-errors";
export { renderKubernetesSecret, type RenderSecretOptions } from "./kubernetes/render-kubernetes-secret";
export { renderSecretVolume, type SecretVolumeOptions } from "./kubernetes/render-secret-volume";
export { toYaml } from "./kubernetes/to-yaml";
export type { KeyToPath, KubernetesSecret, OwnerReference, ProjectedSecretVolume, SecretVolumeMount } from "./kubernetes/kubernetes-types";
export { TakeOnceSecrets, type CreatedSecret, type SecretMetadata, type TakeOnceSecretsOptions } from "./take-once/take-once-secrets";
export { SecretEntry } from "./take-once/secret-entry.entity";

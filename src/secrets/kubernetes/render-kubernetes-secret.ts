import { InvalidArgumentError } from "../../errors";
import { SECRET_LIMITS } from "../limits";
import { NamedSecretsBundle } from "../named-secrets-bundle";
import { checkDns1123Label, checkDns1123Subdomain, checkLabels } from "./kubernetes-names";
import type { KubernetesSecret, OwnerReference } from "./kubernetes-types";

/** Where and how the Secret is created. */
export interface RenderSecretOptions {
  /** The Secret's name (DNS-1123 subdomain), e.g. "ws-1234-secrets". */
  name: string;
  /** The namespace (DNS-1123 label) — the workspace's, so the secret lives where it is used. */
  namespace: string;
  labels?: Record<string, string>;
  /** Usually the workspace Pod, so Kubernetes deletes the Secret with it. */
  ownerReference?: OwnerReference;
}

/**
 * Renders a bundle as a `v1` Secret (type Opaque, base64 `data`, one key per entry — the bundle already checked the names — keys sorted),
 * checked against the API server's rules so a bad name fails here with a typed error, not at
 * workspace start. The result carries the secrets: send it to the API, never log it.
 *
 * @throws InvalidArgumentError for a bad name, namespace, label, owner reference or data key, or data over 1 MiB
 * @example
 * const secret = renderKubernetesSecret(bundle, { name: "ws-1234-secrets", namespace: "workspaces", labels: { "gitpod.io/workspace": "1234" } });
 * await coreV1.createNamespacedSecret({ namespace: "workspaces", body: secret });
 */
export function renderKubernetesSecret(bundle: NamedSecretsBundle, options: RenderSecretOptions): KubernetesSecret {
  if (!(bundle instanceof NamedSecretsBundle)) throw new InvalidArgumentError("bundle", "bundle must be a NamedSecretsBundle (new NamedSecretsBundle([...]) or WorkspaceSecrets' result)");
  if (typeof options !== "object" || options === null) throw new InvalidArgumentError("options", "options must be an object { name, namespace, labels?, ownerReference? }");
  const name = checkDns1123Subdomain(options.name, "name", "Secret name");
  const namespace = checkDns1123Label(options.namespace, "namespace", "namespace");
  const labels = checkLabels(options.labels, "labels");
  const owner = options.ownerReference === undefined ? undefined : checkOwnerReference(options.ownerReference);

  const entries = [...bundle].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let total = 0;
  const data: Record<string, string> = {};
  for (const entry of entries) {
    const bytes = Buffer.from(entry.value, "utf8");
    total += bytes.length;
    data[entry.name] = bytes.toString("base64");
  }
  if (total > SECRET_LIMITS.maxKubernetesSecretBytes) {
    throw new InvalidArgumentError(
      "bundle",
      `the Secret's data would total ${total} bytes; Kubernetes accepts at most ${SECRET_LIMITS.maxKubernetesSecretBytes} (1 MiB) per Secret — split the bundle across Secrets or leave out large values`,
    );
  }

  const metadata: KubernetesSecret["metadata"] = { name, namespace };
  if (labels && Object.keys(labels).length > 0) metadata.labels = labels;
  if (owner) metadata.ownerReferences = [owner];
  return { apiVersion: "v1", kind: "Secret", metadata, type: "Opaque", data };
}

function checkOwnerReference(ref: OwnerReference): OwnerReference {
  if (typeof ref !== "object" || ref === null) throw new InvalidArgumentError("ownerReference", "ownerReference must be an object { apiVersion, kind, name, uid, controller?, blockOwnerDeletion? }");
  for (const field of ["apiVersion", "kind", "name", "uid"] as const) {
    const v = ref[field];
    if (typeof v !== "string" || v.length === 0 || v.length > 253 || /[\s\u0000-\u001f]/.test(v)) {
      throw new InvalidArgumentError(`ownerReference.${field}`, `ownerReference.${field} must be a non-empty string of at most 253 characters without spaces (copy it from the owner object's metadata)`);
    }
  }
  for (const field of ["controller", "blockOwnerDeletion"] as const) {
    if (ref[field] !== undefined && typeof ref[field] !== "boolean") throw new InvalidArgumentError(`ownerReference.${field}`, `ownerReference.${field} must be a boolean when given`);
  }
  const out: OwnerReference = { apiVersion: ref.apiVersion, kind: ref.kind, name: ref.name, uid: ref.uid };
  if (ref.controller !== undefined) out.controller = ref.controller;
  if (ref.blockOwnerDeletion !== undefined) out.blockOwnerDeletion = ref.blockOwnerDeletion;
  return out;
}

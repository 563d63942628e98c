/**
 * The plain Kubernetes object shapes the renderers return — just what they emit, so callers can pass
 * them to any client (@kubernetes/client-node, kubectl via toYaml) without this library depending on one.
 */

/** metadata.ownerReferences[] entry: the Secret is garbage-collected with its owner (e.g. the workspace Pod). */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** A `v1` Secret of type Opaque. `data` values are base64 — this object carries the secrets: never log it. */
export interface KubernetesSecret {
  apiVersion: "v1";
  kind: "Secret";
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    ownerReferences?: OwnerReference[];
  };
  type: "Opaque";
  data: Record<string, string>;
}

/** One key of the Secret projected as a file. */
export interface KeyToPath {
  key: string;
  /** Relative to the mount path. */
  path: string;
  /** File mode, 0–0777 (pass octal, e.g. 0o400); defaults to the volume's defaultMode. */
  mode?: number;
}

/** A Pod `spec.volumes[]` entry with a projected volume of one Secret source. */
export interface ProjectedSecretVolume {
  name: string;
  projected: {
    sources: Array<{ secret: { name: string; items: KeyToPath[] } }>;
    defaultMode?: number;
  };
}

/** A container `volumeMounts[]` entry mounting the whole volume directory (never subPath). */
export interface SecretVolumeMount {
  name: string;
  mountPath: string;
  readOnly: true;
}

import { InvalidArgumentError } from "../../errors";
import { checkDataKey, checkDns1123Label, checkDns1123Subdomain, checkFileMode, checkMountPath, checkRelativePath } from "./kubernetes-names";
import type { KeyToPath, ProjectedSecretVolume, SecretVolumeMount } from "./kubernetes-types";

/** The volume's name and where the container sees it. */
export interface SecretVolumeOptions {
  /** DNS-1123 label, e.g. "workspace-secrets". */
  volumeName: string;
  /** Absolute directory in the container, e.g. "/var/run/secrets/workspace". */
  mountPath: string;
  /** Mode of files without their own `mode` (0–0777, e.g. 0o400). Default: Kubernetes' (0644). */
  defaultMode?: number;
}

const MAX_ITEMS = 1024;

/**
 * Mounts selected keys of a Secret as files: a **projected** volume with one Secret source
 * and an explicit item list, plus a read-only volumeMount of the whole directory. Never environment
 * variables, and never `subPath`: Kubernetes does not update subPath mounts when the Secret changes
 * (only on container restart), so the whole volume directory is mounted instead.
 *
 * @throws InvalidArgumentError for a bad Secret or volume name, key, path (absolute, "..", duplicate), mode or mount path
 * @example
 * const { volume, volumeMount } = renderSecretVolume("ws-1234-secrets",
 *   [{ key: "scm-token-github-com", path: "scm/github.com/token", mode: 0o400 }],
 *   { volumeName: "workspace-secrets", mountPath: "/var/run/secrets/workspace" });
 * pod.spec.volumes.push(volume); container.volumeMounts.push(volumeMount);
 */
export function renderSecretVolume(secretName: string, items: readonly KeyToPath[], options: SecretVolumeOptions): { volume: ProjectedSecretVolume; volumeMount: SecretVolumeMount } {
  const name = checkDns1123Subdomain(secretName, "secretName", "Secret name");
  if (typeof options !== "object" || options === null) throw new InvalidArgumentError("options", "options must be an object { volumeName, mountPath, defaultMode? }");
  const volumeName = checkDns1123Label(options.volumeName, "volumeName", "volume name");
  const mountPath = checkMountPath(options.mountPath, "mountPath");
  const defaultMode = checkFileMode(options.defaultMode, "defaultMode");
  if (!Array.isArray(items) || items.length === 0 || items.length > MAX_ITEMS) {
    throw new InvalidArgumentError("items", `items must list 1 to ${MAX_ITEMS} { key, path, mode? } entries: the keys to mount as files`);
  }
  const paths = new Set<string>();
  const rendered: KeyToPath[] = items.map((item, i) => {
    if (typeof item !== "object" || item === null) throw new InvalidArgumentError(`items[${i}]`, `items[${i}] must be an object { key, path, mode? }`);
    const key = checkDataKey(item.key, `items[${i}].key`);
    const path = checkRelativePath(item.path, `items[${i}].path`);
    const mode = checkFileMode(item.mode, `items[${i}].mode`);
    const normalized = path.split("/").filter((p) => p !== "" && p !== ".").join("/");
    if (paths.has(normalized)) throw new InvalidArgumentError(`items[${i}].path`, `items[${i}].path ${JSON.stringify(path)} is used twice; Kubernetes refuses conflicting duplicate paths in a projected volume`);
    paths.add(normalized);
    return mode === undefined ? { key, path } : { key, path, mode };
  });
  const projected: ProjectedSecretVolume["projected"] = { sources: [{ secret: { name, items: rendered } }] };
  if (defaultMode !== undefined) projected.defaultMode = defaultMode;
  return { volume: { name: volumeName, projected }, volumeMount: { name: volumeName, mountPath, readOnly: true } };
}

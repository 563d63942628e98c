import { InvalidArgumentError } from "../../errors";

/**
 * Kubernetes' validation rules for the names, keys, labels, paths and modes the renderers emit
 * (k8s.io/apimachinery/pkg/util/validation and pkg/apis/core/validation). Checking them here turns
 * an API-server rejection at workspace start into a typed error at the call site. Every function
 * throws InvalidArgumentError naming `argument`; none echoes a secret value (these are all names).
 */

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DATA_KEY = /^[-._a-zA-Z0-9]+$/;
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function shown(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value) : typeof value;
}

/**
 * A DNS-1123 subdomain (Secret names, namespaces are labels): at most 253 characters of a-z 0-9 '-' '.'.
 * @example checkDns1123Subdomain("ws-1234-secrets", "name", "Secret name");
 */
export function checkDns1123Subdomain(value: unknown, argument: string, what: string): string {
  if (typeof value !== "string" || value.length === 0 || value.length > 253 || !DNS1123_SUBDOMAIN.test(value)) {
    throw new InvalidArgumentError(
      argument,
      `${what} ${shown(value)} is invalid: Kubernetes needs a DNS-1123 subdomain — 1 to 253 lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit (e.g. "ws-1234-secrets")`,
    );
  }
  return value;
}

/**
 * A DNS-1123 label (namespaces, volume names): at most 63 characters of a-z 0-9 '-'.
 * @example checkDns1123Label("workspaces", "namespace", "namespace");
 */
export function checkDns1123Label(value: unknown, argument: string, what: string): string {
  if (typeof value !== "string" || value.length === 0 || value.length > 63 || !DNS1123_LABEL.test(value)) {
    throw new InvalidArgumentError(
      argument,
      `${what} ${shown(value)} is invalid: Kubernetes needs a DNS-1123 label — 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. "scm-secrets")`,
    );
  }
  return value;
}

/**
 * A Secret/ConfigMap data key: `[-._a-zA-Z0-9]+`, at most 253 characters, not "." or "..", not starting with "..".
 * @example checkDataKey("scm-token-github-com", "items[0].key");
 */
export function checkDataKey(value: unknown, argument: string): string {
  const ok = typeof value === "string" && value.length > 0 && value.length <= 253 && DATA_KEY.test(value) && !value.startsWith("..") && value !== ".";
  if (!ok) {
    throw new InvalidArgumentError(
      argument,
      `${argument} ${shown(value)} is not a valid Kubernetes Secret data key: use 1 to 253 characters of letters, digits, '-', '_' and '.', not "." and not starting with ".." (e.g. "scm-token-github-com")`,
    );
  }
  return value;
}

/**
 * Label keys (`[prefix/]name`, name ≤ 63, prefix a DNS subdomain) and values (≤ 63, may be empty).
 * Returns a copy with keys sorted, so rendered objects have a stable order.
 * @example checkLabels({ "app.kubernetes.io/part-of": "workspaces" }, "labels");
 */
export function checkLabels(labels: unknown, argument: string): Record<string, string> | undefined {
  if (labels === undefined) return undefined;
  if (typeof labels !== "object" || labels === null || Array.isArray(labels)) throw new InvalidArgumentError(argument, `${argument} must be an object of string keys and values`);
  const sorted: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const slash = key.lastIndexOf("/");
    const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
    const name = slash >= 0 ? key.slice(slash + 1) : key;
    const prefixOk = prefix === undefined || (prefix.length <= 253 && DNS1123_SUBDOMAIN.test(prefix));
    if (!prefixOk || name.length > 63 || !QUALIFIED_NAME_PART.test(name) || key.indexOf("/") !== slash) {
      throw new InvalidArgumentError(
        argument,
        `${argument} key ${shown(key)} is invalid: use an optional DNS subdomain prefix and '/', then 1 to 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit (e.g. "app.kubernetes.io/name")`,
      );
    }
    if (typeof value !== "string" || value.length > 63 || !LABEL_VALUE.test(value)) {
      throw new InvalidArgumentError(
        argument,
        `${argument}[${JSON.stringify(key)}] value ${shown(value)} is invalid: use at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit (or an empty string)`,
      );
    }
    sorted[key] = value;
  }
  return sorted;
}

/**
 * A file path inside a volume: relative, no ".." element, not starting with "..", no NUL.
 * @example checkRelativePath("git/token", "items[0].path");
 */
export function checkRelativePath(value: unknown, argument: string): string {
  if (typeof value !== "string" || value.length === 0 || value.length > 4096 || value.includes("\u0000")) {
    throw new InvalidArgumentError(argument, `${argument} must be a non-empty relative file path of at most 4096 characters (e.g. "git/token")`);
  }
  if (value.startsWith("/")) throw new InvalidArgumentError(argument, `${argument} ${shown(value)} must be a relative path: Kubernetes places it inside the volume's mount directory (e.g. "git/token")`);
  if (value.split("/").includes("..")) throw new InvalidArgumentError(argument, `${argument} ${shown(value)} must not contain '..' elements: Kubernetes refuses paths that leave the volume`);
  if (value.startsWith("..")) throw new InvalidArgumentError(argument, `${argument} ${shown(value)} must not start with '..': Kubernetes reserves those names for its atomic-update symlinks`);
  return value;
}

/**
 * A mount path in the container: absolute, no ".." element, no NUL.
 * @example checkMountPath("/var/run/secrets/workspace", "mountPath");
 */
export function checkMountPath(value: unknown, argument: string): string {
  if (typeof value !== "string" || !value.startsWith("/") || value.length > 4096 || value.includes("\u0000") || value.split("/").includes("..")) {
    throw new InvalidArgumentError(argument, `${argument} ${shown(value)} must be an absolute directory path without '..' elements (e.g. "/var/run/secrets/workspace")`);
  }
  return value;
}

/**
 * A file mode: an integer from 0 to 0777 (octal; 511 decimal). Pass octal literals, e.g. 0o400.
 * @example checkFileMode(0o440, "items[0].mode");
 */
export function checkFileMode(value: unknown, argument: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0o777) {
    throw new InvalidArgumentError(argument, `${argument} must be an integer file mode from 0 to 0777 (octal, e.g. 0o400), got ${typeof value === "number" ? value : typeof value}`);
  }
  return value;
}

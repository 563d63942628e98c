import { Document } from "yaml";

/**
 * Serialises Kubernetes objects as one multi-document YAML text (`---` between documents), for
 * `kubectl apply -f -` and golden files. Keys keep the order the renderers build them in (apiVersion,
 * kind, metadata, type, data; data keys and labels sorted), lines are never folded (base64 stays on
 * one line), so the same input always gives the same bytes.
 *
 * @example
 * process.stdout.write(toYaml([renderKubernetesSecret(bundle, { name: "ws-1", namespace: "default" })]));
 */
export function toYaml(objects: readonly object[]): string {
  return objects.map((o) => new Document(o).toString({ lineWidth: 0, minContentWidth: 0 })).join("---\n");
}

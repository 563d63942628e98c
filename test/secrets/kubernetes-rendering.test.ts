import { expect } from "chai";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { InvalidArgumentError } from "../../src/errors";
import type { KeyToPath, OwnerReference } from "../../src/secrets/kubernetes/kubernetes-types";
import { renderKubernetesSecret, type RenderSecretOptions } from "../../src/secrets/kubernetes/render-kubernetes-secret";
import { renderSecretVolume, type SecretVolumeOptions } from "../../src/secrets/kubernetes/render-secret-volume";
import { toYaml } from "../../src/secrets/kubernetes/to-yaml";
import { NamedSecret } from "../../src/secrets/named-secret";
import { NamedSecretsBundle } from "../../src/secrets/named-secrets-bundle";

/**
 * Golden file: test/golden/workspace-secret.yaml. After an intended change of the rendering,
 * regenerate it with `UPDATE_GOLDEN=1 npx mocha test/secrets/kubernetes-rendering.test.ts` and review the diff.
 */
const GOLDEN = join(__dirname, "..", "golden", "workspace-secret.yaml");

const OWNER: OwnerReference = { apiVersion: "v1", kind: "Pod", name: "ws-0123", uid: "7f1c2a4e-0b9d-4c1e-9a53-2f8e6d1b0c77", controller: true, blockOwnerDeletion: true };

function sampleBundle(): NamedSecretsBundle {
  return new NamedSecretsBundle([
    new NamedSecret({ name: "scm-token-github-com", value: "gho_EXAMPLEtoken0123456789", kind: "scm-token", host: "github.com", expiresAt: new Date("2026-01-01T08:00:00Z") }),
    new NamedSecret({ name: "scm-username-github-com", value: "x-access-token", kind: "scm-username", host: "github.com" }),
    new NamedSecret({ name: "platform-token", value: "platform-EXAMPLE-token", kind: "platform-token" }),
    new NamedSecret({ name: "env-GREETING", value: "grüße\nzweite Zeile", kind: "env", envName: "GREETING" }),
    new NamedSecret({ name: "env-EMPTY", value: "", kind: "env", envName: "EMPTY" }),
  ]);
}

const SECRET_OPTIONS: RenderSecretOptions = { name: "ws-0123-secrets", namespace: "workspaces", labels: { "gitpod.io/workspace": "0123", "app.kubernetes.io/part-of": "workspaces" }, ownerReference: OWNER };
const ITEMS: KeyToPath[] = [
  { key: "scm-token-github-com", path: "scm/github.com/token", mode: 0o400 },
  { key: "scm-username-github-com", path: "scm/github.com/username" },
  { key: "platform-token", path: "platform/token", mode: 0o400 },
];
const VOLUME_OPTIONS: SecretVolumeOptions = { volumeName: "workspace-secrets", mountPath: "/var/run/secrets/workspace", defaultMode: 0o440 };

function expectInvalid(render: () => unknown, argument: string, message: string | RegExp): void {
  let error: unknown;
  try {
    render();
  } catch (e) {
    error = e;
  }
  expect(error, `${argument}: ${message}`).to.be.instanceOf(InvalidArgumentError);
  expect((error as InvalidArgumentError).argument).to.equal(argument);
  expect((error as Error).message).to.match(/^scm-token-service: /);
  if (typeof message === "string") expect((error as Error).message).to.contain(message);
  else expect((error as Error).message).to.match(message);
}

describe("Kubernetes rendering", () => {
  describe("renderKubernetesSecret", () => {
    it("renders a v1 Opaque Secret: base64 data under sorted keys, labels, owner reference; the data round-trips", () => {
      const bundle = sampleBundle();
      const secret = renderKubernetesSecret(bundle, SECRET_OPTIONS);
      expect(secret).to.deep.include({ apiVersion: "v1", kind: "Secret", type: "Opaque" });
      expect(secret.metadata).to.deep.equal({
        name: "ws-0123-secrets",
        namespace: "workspaces",
        labels: { "app.kubernetes.io/part-of": "workspaces", "gitpod.io/workspace": "0123" },
        ownerReferences: [OWNER],
      });
      expect(Object.keys(secret.data)).to.deep.equal([...bundle.names].sort());
      for (const entry of bundle) expect(Buffer.from(secret.data[entry.name], "base64").toString("utf8"), entry.name).to.equal(entry.value);
      expect(secret.data["env-EMPTY"]).to.equal("");
    });

    it("omits labels and ownerReferences when not given", () => {
      const secret = renderKubernetesSecret(sampleBundle(), { name: "s", namespace: "default" });
      expect(secret.metadata).to.deep.equal({ name: "s", namespace: "default" });
    });

    it("accepts exactly 1 MiB of data and refuses one byte more", () => {
      const half = 512 * 1024;
      const fits = new NamedSecretsBundle([new NamedSecret({ name: "a", value: "x".repeat(half), kind: "env" }), new NamedSecret({ name: "b", value: "é".repeat(half / 2), kind: "env" })]);
      expect(Buffer.from(renderKubernetesSecret(fits, { name: "s", namespace: "default" }).data.b, "base64").length).to.equal(half);
      const over = new NamedSecretsBundle([...fits, new NamedSecret({ name: "c", value: "y", kind: "env" })]);
      expectInvalid(() => renderKubernetesSecret(over, { name: "s", namespace: "default" }), "bundle", "would total 1048577 bytes; Kubernetes accepts at most 1048576 (1 MiB)");
    });

    const cases: Array<[string, Partial<RenderSecretOptions> | Record<string, unknown>, string, string | RegExp]> = [
      ["an upper-case Secret name", { name: "WS-1" }, "name", "DNS-1123 subdomain"],
      ["a Secret name with '_'", { name: "ws_1" }, "name", "DNS-1123 subdomain"],
      ["a Secret name starting with '-'", { name: "-ws" }, "name", "DNS-1123 subdomain"],
      ["a Secret name ending with '.'", { name: "ws." }, "name", "DNS-1123 subdomain"],
      ["a Secret name with '..'", { name: "ws..1" }, "name", "DNS-1123 subdomain"],
      ["a Secret name of 254 characters", { name: "a".repeat(254) }, "name", "DNS-1123 subdomain"],
      ["an empty Secret name", { name: "" }, "name", "DNS-1123 subdomain"],
      ["a namespace with a dot", { namespace: "work.spaces" }, "namespace", "DNS-1123 label"],
      ["a namespace of 64 characters", { namespace: "a".repeat(64) }, "namespace", "DNS-1123 label"],
      ["a label key with a space", { labels: { "bad key": "v" } }, "labels", 'key "bad key" is invalid'],
      ["a label key with an upper-case prefix", { labels: { "Example.com/x": "v" } }, "labels", "is invalid"],
      ["a label key with two slashes", { labels: { "a.io/b/c": "v" } }, "labels", "is invalid"],
      ["a label name of 64 characters", { labels: { ["a".repeat(64)]: "v" } }, "labels", "is invalid"],
      ["a label value with a space", { labels: { app: "has space" } }, "labels", "value"],
      ["a label value of 64 characters", { labels: { app: "a".repeat(64) } }, "labels", "value"],
      ["a label value ending with '-'", { labels: { app: "ws-" } }, "labels", "value"],
      ["an owner reference without uid", { ownerReference: { ...OWNER, uid: "" } }, "ownerReference.uid", "non-empty string"],
      ["an owner reference with a non-boolean controller", { ownerReference: { ...OWNER, controller: "yes" } }, "ownerReference.controller", "boolean"],
    ];
    for (const [title, override, argument, message] of cases) {
      it(`refuses ${title}`, () => {
        expectInvalid(() => renderKubernetesSecret(sampleBundle(), { ...SECRET_OPTIONS, ...override } as RenderSecretOptions), argument, message);
      });
    }
  });

  describe("renderSecretVolume", () => {
    it("renders a projected volume of the selected keys and a read-only mount of the whole directory (no subPath, no env)", () => {
      const { volume, volumeMount } = renderSecretVolume("ws-0123-secrets", ITEMS, VOLUME_OPTIONS);
      expect(volume).to.deep.equal({
        name: "workspace-secrets",
        projected: { sources: [{ secret: { name: "ws-0123-secrets", items: ITEMS } }], defaultMode: 0o440 },
      });
      expect(volumeMount).to.deep.equal({ name: "workspace-secrets", mountPath: "/var/run/secrets/workspace", readOnly: true });
      expect(JSON.stringify({ volume, volumeMount })).to.not.match(/subPath|"env|envFrom/);
    });

    const cases: Array<[string, () => unknown, string, string | RegExp]> = [
      ["an invalid Secret name", () => renderSecretVolume("Bad_Name", ITEMS, VOLUME_OPTIONS), "secretName", "DNS-1123 subdomain"],
      ["a volume name with a dot", () => renderSecretVolume("s", ITEMS, { ...VOLUME_OPTIONS, volumeName: "work.secrets" }), "volumeName", "DNS-1123 label"],
      ["a volume name of 64 characters", () => renderSecretVolume("s", ITEMS, { ...VOLUME_OPTIONS, volumeName: "v".repeat(64) }), "volumeName", "DNS-1123 label"],
      ["no items", () => renderSecretVolume("s", [], VOLUME_OPTIONS), "items", "1 to 1024"],
      ["a key with '/'", () => renderSecretVolume("s", [{ key: "a/b", path: "x" }], VOLUME_OPTIONS), "items[0].key", "letters, digits, '-', '_' and '.'"],
      ["the key '.'", () => renderSecretVolume("s", [{ key: ".", path: "x" }], VOLUME_OPTIONS), "items[0].key", 'not "."'],
      ["the key '..'", () => renderSecretVolume("s", [{ key: "..", path: "x" }], VOLUME_OPTIONS), "items[0].key", 'starting with ".."'],
      ["a key of 254 characters", () => renderSecretVolume("s", [{ key: "k".repeat(254), path: "x" }], VOLUME_OPTIONS), "items[0].key", "1 to 253"],
      ["an absolute path", () => renderSecretVolume("s", [{ key: "k", path: "/etc/passwd" }], VOLUME_OPTIONS), "items[0].path", "must be a relative path"],
      ["a path with a '..' element", () => renderSecretVolume("s", [{ key: "k", path: "a/../../etc" }], VOLUME_OPTIONS), "items[0].path", "must not contain '..'"],
      ["a path starting with '..'", () => renderSecretVolume("s", [{ key: "k", path: "..data" }], VOLUME_OPTIONS), "items[0].path", "must not start with '..'"],
      ["an empty path", () => renderSecretVolume("s", [{ key: "k", path: "" }], VOLUME_OPTIONS), "items[0].path", "non-empty relative file path"],
      ["a duplicate path", () => renderSecretVolume("s", [{ key: "a", path: "x/y" }, { key: "b", path: "x//y" }], VOLUME_OPTIONS), "items[1].path", "used twice"],
      ["mode -1", () => renderSecretVolume("s", [{ key: "k", path: "x", mode: -1 }], VOLUME_OPTIONS), "items[0].mode", "0 to 0777"],
      ["mode 01000", () => renderSecretVolume("s", [{ key: "k", path: "x", mode: 0o1000 }], VOLUME_OPTIONS), "items[0].mode", "0 to 0777"],
      ["a fractional mode", () => renderSecretVolume("s", [{ key: "k", path: "x", mode: 1.5 }], VOLUME_OPTIONS), "items[0].mode", "integer"],
      ["defaultMode 512", () => renderSecretVolume("s", ITEMS, { ...VOLUME_OPTIONS, defaultMode: 512 }), "defaultMode", "0 to 0777"],
      ["a relative mount path", () => renderSecretVolume("s", ITEMS, { ...VOLUME_OPTIONS, mountPath: "secrets" }), "mountPath", "absolute"],
      ["a mount path with '..'", () => renderSecretVolume("s", ITEMS, { ...VOLUME_OPTIONS, mountPath: "/a/../etc" }), "mountPath", "without '..'"],
    ];
    for (const [title, render, argument, message] of cases) {
      it(`refuses ${title}`, () => expectInvalid(render, argument, message));
    }

    it("accepts modes 0 and 0777 and the longest valid key", () => {
      const { volume } = renderSecretVolume("s", [{ key: "k".repeat(253), path: "a", mode: 0 }, { key: "k", path: "b", mode: 0o777 }], VOLUME_OPTIONS);
      expect(volume.projected.sources[0].secret.items.map((i) => i.mode)).to.deep.equal([0, 0o777]);
    });
  });

  describe("toYaml", () => {
    it("matches the golden file (UPDATE_GOLDEN=1 regenerates it) and parses back to the same objects", () => {
      const secret = renderKubernetesSecret(sampleBundle(), SECRET_OPTIONS);
      const { volume, volumeMount } = renderSecretVolume(secret.metadata.name, ITEMS, VOLUME_OPTIONS);
      const pod = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "ws-0123", namespace: "workspaces" },
        spec: { volumes: [volume], containers: [{ name: "workspace", image: "registry.example.com/workspace:latest", volumeMounts: [volumeMount] }] },
      };
      const text = toYaml([secret, pod]);
      if (process.env.UPDATE_GOLDEN === "1") writeFileSync(GOLDEN, text);
      expect(existsSync(GOLDEN), `${GOLDEN} is missing; create it with UPDATE_GOLDEN=1`).to.equal(true);
      expect(text).to.equal(readFileSync(GOLDEN, "utf8"));
      expect(toYaml([secret, pod]), "stable across calls").to.equal(text);
      expect(parseAllDocuments(text).map((d) => (Array.isArray(d) ? undefined : d.toJS()))).to.deep.equal([secret, pod]);
    });
  });
});

import { expect } from "chai";
import fc from "fast-check";
import { InvalidArgumentError } from "../../src/errors";
import { renderKubernetesSecret } from "../../src/secrets/kubernetes/render-kubernetes-secret";
import { NamedSecretsBundle } from "../../src/secrets/named-secrets-bundle";
import { WorkspaceSecrets } from "../../src/secrets/workspace-secrets";
import { dbKinds } from "../support/databases";
import { hostileScalar, LOOKALIKE_TRANSFORMS, type LookalikeTransform } from "./support/arbitraries";
import { FailureLog, show } from "./support/cases";
import { userIdVerdict } from "./support/oracles";
import { fcParams, typedOutcome } from "./support/outcome";
import { openWorld, type Victim, type World } from "./support/world";

/**
 * WorkspaceSecrets.buildBundle and renderKubernetesSecret with hostile input: a bundle holds exactly
 * the requesting user's tokens and the extras given (a look-alike user id gets no bundle with
 * someone else's token), bad input is refused with a typed error naming it, nothing secret shows
 * when a bundle is serialised, and the rendered Secret decodes to exactly the bundle's values.
 */

const POSIX = /^[A-Za-z_][A-Za-z0-9_]*$/;

for (const kind of dbKinds()) {
  describe(`adversarial: WorkspaceSecrets and Kubernetes rendering (${kind})`, function () {
    this.timeout(120_000);
    let w: World;
    let subject: Victim[];
    before(async () => {
      w = await openWorld(kind);
      const userId = `${w.tag()}-workspace`;
      subject = [await w.storeVictim(userId, w.hosts[0]), await w.storeVictim(userId, w.hosts[1])];
    });
    after(async () => w?.close());

    it("builds bundles of exactly the requesting user's tokens and the given extras, or refuses with a typed error", async () => {
      const envArb = fc.oneof(
        fc.constant(undefined),
        fc.dictionary(fc.oneof(fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,8}$/), fc.constantFrom("1BAD", "with-dash", "é", "", "PATH", "__proto__", "A".repeat(257))), fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom("a\u0000b", "x".repeat(64 * 1024 + 1))), { maxKeys: 4 }),
        fc.array(fc.record({ name: fc.constantFrom("DUP", "OTHER", "bad name", 5), value: fc.oneof(fc.string({ maxLength: 5 }), hostileScalar) }), { maxLength: 3 }),
        hostileScalar,
      );
      const hostsArb = fc.oneof(
        fc.constant("both"),
        fc.constant("first"),
        fc.constant([]),
        fc.constantFrom(["BITBUCKET.EXAMPLE.COM"], [" bitbucket.example.com "], ["bitbucket.example.com", "Bitbucket.Example.com"], ["bitbucket.example.com."], ["unknown.example.com"], ["bit bucket.example.com"], [""], [5], "bitbucket.example.com", null),
        fc.constant(Array.from({ length: 33 }, (_, i) => `h${i}.example.com`)),
      );
      const input = fc.record({
        user: fc.oneof({ weight: 3, arbitrary: fc.constant<"subject" | LookalikeTransform | "hostile">("subject") }, { weight: 2, arbitrary: fc.constantFrom(...(Object.keys(LOOKALIKE_TRANSFORMS) as LookalikeTransform[])) }, { weight: 1, arbitrary: fc.constant("hostile" as const) }),
        hostileUser: hostileScalar,
        hosts: hostsArb,
        platformToken: fc.oneof(fc.constant(undefined), fc.constantFrom("ok", "\u0000", "", "long")),
        environment: envArb,
        releasable: fc.boolean(),
      });

      const failures = new FailureLog();
      await fc.assert(
        fc.asyncProperty(input, async (i) => {
          const userId = i.user === "subject" ? subject[0].userId : i.user === "hostile" ? i.hostileUser : LOOKALIKE_TRANSFORMS[i.user](subject[0].userId);
          const lookalike = userId !== subject[0].userId;
          const hosts = i.hosts === "both" ? [...w.hosts] : i.hosts === "first" ? [w.hosts[0]] : i.hosts;
          const platformToken = i.platformToken === "ok" ? w.leaks.secret("platform-token") : i.platformToken === "long" ? w.leaks.secret("platform-token") + "x".repeat(16 * 1024) : i.platformToken;
          const label = `buildBundle(user=${i.user === "hostile" ? show(userId) : i.user}, hosts=${show(hosts)}, platformToken=${show(i.platformToken)}, environment=${show(i.environment)}, releasable=${i.releasable})`;
          await failures.check(label, async () => {
            const secrets = new WorkspaceSecrets(w.service, { logger: w.logger, releasable: i.releasable });
            const got = await typedOutcome(label, w.leaks, () => secrets.buildBundle({ userId: userId as string, hosts: hosts as string[], extras: { platformToken: platformToken as string, environment: i.environment as never } }));
            if (!got.ok) {
              if (userIdVerdict(userId) === "invalid") {
                expect(got.error, `${label}: a bad user id`).to.be.instanceOf(InvalidArgumentError);
              }
              return;
            }
            const bundle = got.value;
            w.leaks.assertObjectClean(`${label}: the bundle`, bundle);
            for (const entry of bundle) w.leaks.assertObjectClean(`${label}: bundle entry ${entry.name}`, entry);
            const subjectValues = new Set(subject.map((s) => s.value));
            for (const entry of bundle) {
              if (entry.kind === "scm-token") {
                expect(lookalike, `${label}: a look-alike of the user got a bundle with the user's token`).to.equal(false);
                expect(subjectValues.has(entry.value), `${label}: ${entry.name} is not the user's token`).to.equal(true);
              }
            }
            // Only valid extras make it in, each exactly as given.
            if (typeof platformToken === "string") expect(bundle.get("platform-token")?.value, `${label}: platform token`).to.equal(platformToken);
            const env = Array.isArray(i.environment) ? i.environment : i.environment && typeof i.environment === "object" ? Object.entries(i.environment).map(([name, value]) => ({ name, value })) : [];
            for (const { name, value } of env as Array<{ name: unknown; value: unknown }>) {
              expect(typeof name === "string" && POSIX.test(name), `${label}: the bad variable name ${show(name)} was accepted`).to.equal(true);
              expect(bundle.get(`env-${String(name)}`)?.value, `${label}: env ${String(name)}`).to.equal(value);
            }
            if (i.releasable) await secrets.releaseBundle(bundle);
          });
          await failures.check(`victims after ${label}`, () => w.checkVictims(label, subject));
        }),
        fcParams(kind === "mariadb" ? 15 : 25),
      );
      await failures.check("surfaces", () => w.checkSurfaces("hostile bundles"));
      failures.assertNone();
    });

    it("renders a Secret whose data decodes to exactly the bundle, or refuses bad names, labels and owners by name", async () => {
      const bundle = await new WorkspaceSecrets(w.service).buildBundle({ userId: subject[0].userId, hosts: [...w.hosts], extras: { platformToken: w.leaks.secret("platform-token"), environment: { NPM_TOKEN: w.leaks.secret("npm"), EMPTY: "", UNICODE: "é\u0301\u200b" } } });
      const dns = fc.oneof(fc.constantFrom("ws-1", "a", "a".repeat(63), "a".repeat(64), "a".repeat(253), "a".repeat(254), "A", "-a", "a-", "a_b", "a.b", "", " ws", "ws\n", "wś", "ws\u200b"), hostileScalar);
      const options = fc.oneof(
        { weight: 1, arbitrary: hostileScalar },
        {
          weight: 6,
          arbitrary: fc.record({
            name: dns,
            namespace: dns,
            labels: fc.oneof(fc.constant(undefined), fc.constantFrom({ app: "ws" }, { "gitpod.io/workspace": "1" }, { "": "x" }, { app: "a".repeat(64) }, { "bad key": "x" }, { app: "-x" }, { app: 5 }), hostileScalar),
            ownerReference: fc.oneof(fc.constant(undefined), fc.constantFrom({ apiVersion: "v1", kind: "Pod", name: "ws", uid: "1" }, { apiVersion: "v1", kind: "Pod", name: "ws" }, { apiVersion: "v1", kind: "Pod", name: "ws", uid: "1", controller: "yes" }), hostileScalar),
          }, { requiredKeys: ["name", "namespace"] }),
        },
      );
      const failures = new FailureLog();
      await fc.assert(
        fc.asyncProperty(options, async (o) => {
          const label = `renderKubernetesSecret(bundle, ${show(o)})`;
          await failures.check(label, async () => {
            const got = await typedOutcome(label, w.leaks, () => renderKubernetesSecret(bundle, o as never));
            if (!got.ok) {
              expect(got.error, label).to.be.instanceOf(InvalidArgumentError);
              return;
            }
            const r = o as { name: unknown; namespace: unknown };
            expect(typeof r.name === "string" && /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(r.name) && r.name.length <= 253, `${label}: an invalid Secret name was accepted`).to.equal(true);
            expect(typeof r.namespace === "string" && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(r.namespace) && r.namespace.length <= 63, `${label}: an invalid namespace was accepted`).to.equal(true);
            const data = got.value.data;
            expect(Object.keys(data).sort(), `${label}: data keys`).to.deep.equal([...bundle.names].sort());
            for (const entry of bundle) expect(Buffer.from(data[entry.name], "base64").toString("utf8"), `${label}: ${entry.name}`).to.equal(entry.value);
          });
        }),
        fcParams(30),
      );
      // A bundle assembled by hand with names that would break a Secret is refused at construction.
      for (const name of ["bad name", "", "../x", "a/b", "é"]) {
        await failures.check(`NamedSecretsBundle(${show(name)})`, async () => {
          const got = await typedOutcome(`new NamedSecretsBundle([${show(name)}])`, w.leaks, () => new NamedSecretsBundle([{ name, value: "v", kind: "env" } as never]));
          expect(got.ok, `NamedSecretsBundle accepted the entry name ${show(name)}`).to.equal(false);
        });
      }
      failures.assertNone();
    });
  });
}

import { inspect } from "node:util";
import { InvalidArgumentError } from "../errors";
import { NamedSecret } from "./named-secret";
import { checkDataKey } from "./kubernetes/kubernetes-names";

/**
 * The secrets a workspace needs at start, each under a stable name. Names are unique
 * and valid Kubernetes data keys, so a bundle renders 1:1 into a Secret
 * (`renderKubernetesSecret`). `JSON.stringify` and `util.inspect` show names and kinds, never values.
 *
 * @example
 * const bundle = new NamedSecretsBundle([new NamedSecret({ name: "env-FOO", value: "bar", kind: "env", envName: "FOO" })]);
 * bundle.get("env-FOO")?.value; // "bar"
 * JSON.stringify(bundle);        // {"entries":[{"name":"env-FOO","kind":"env",…,"value":"[redacted]"}]}
 */
export class NamedSecretsBundle implements Iterable<NamedSecret> {
  readonly entries: readonly NamedSecret[];
  readonly #byName: ReadonlyMap<string, NamedSecret>;

  /** @throws InvalidArgumentError when two entries share a name or a name is not a valid Kubernetes data key. */
  constructor(entries: Iterable<NamedSecret>) {
    const list = [...entries];
    const byName = new Map<string, NamedSecret>();
    for (const [i, entry] of list.entries()) {
      if (!(entry instanceof NamedSecret)) throw new InvalidArgumentError(`entries[${i}]`, `entries[${i}] must be a NamedSecret`);
      checkDataKey(entry.name, `entries[${i}].name`);
      if (byName.has(entry.name)) {
        throw new InvalidArgumentError(`entries[${i}].name`, `two entries are named "${entry.name}"; every name in a bundle must be unique`);
      }
      byName.set(entry.name, entry);
    }
    this.entries = Object.freeze(list);
    this.#byName = byName;
  }

  /** The entry with this name, or undefined. @example bundle.get("platform-token")?.value */
  get(name: string): NamedSecret | undefined {
    return this.#byName.get(name);
  }

  /** The names, in bundle order. @example bundle.names; // ["scm-token-github-com", "env-FOO"] */
  get names(): string[] {
    return this.entries.map((e) => e.name);
  }

  /** The sum of the values' UTF-8 sizes (what Kubernetes limits to 1 MiB per Secret). @example bundle.totalBytes <= 1_048_576 */
  get totalBytes(): number {
    return this.entries.reduce((sum, e) => sum + e.byteLength, 0);
  }

  /** The earliest `expiresAt` of any entry: the bundle is fully usable until then. @example bundle.expiresAt?.toISOString() */
  get expiresAt(): Date | undefined {
    const times = this.entries.map((e) => e.expiresAt?.getTime()).filter((t): t is number => t !== undefined);
    return times.length === 0 ? undefined : new Date(Math.min(...times));
  }

  /** Iterates the entries. @example for (const s of bundle) ship(s.name, s.value); */
  [Symbol.iterator](): Iterator<NamedSecret> {
    return this.entries[Symbol.iterator]();
  }

  /** Names, kinds and expiries; values redacted. @example logger.info({ bundle: bundle.toJSON() }, "built") */
  toJSON(): Record<string, unknown> {
    return { entries: this.entries.map((e) => e.toJSON()) };
  }

  [inspect.custom](): string {
    return `NamedSecretsBundle ${inspect(this.toJSON(), { depth: 4 })}`;
  }
}

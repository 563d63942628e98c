import { inspect } from "node:util";

/** What a named secret is for; decides how the workspace side uses it. */
export type NamedSecretKind = "scm-token" | "scm-username" | "platform-token" | "env";

/** The fields of a named secret. */
export interface NamedSecretInit {
  /** Stable, deterministic name; also the Kubernetes Secret data key (`[-._a-zA-Z0-9]+`). */
  name: string;
  /** The secret itself. */
  value: string;
  kind: NamedSecretKind;
  /** When the value stops working (SCM tokens). */
  expiresAt?: Date;
  /** Until when the SCM token is promised not to be revoked by a refresh (the clone's reservation). */
  reservedUntil?: Date;
  /** The SCM host an `scm-token` / `scm-username` belongs to. */
  host?: string;
  /** The variable name of an `env` entry (the name without the `env-` prefix). */
  envName?: string;
}

/**
 * One entry of a named-secrets bundle (named secrets instead of one-time secrets). The value
 * sits in a private field behind a getter, so spreading, `Object.entries`, `JSON.stringify` and
 * `util.inspect` of the entry never show it; read `value` explicitly where you ship it.
 *
 * @example
 * const s = new NamedSecret({ name: "platform-token", value: "pt-123", kind: "platform-token" });
 * JSON.stringify(s); // {"name":"platform-token","kind":"platform-token","value":"[redacted]"}
 * s.value;           // "pt-123"
 */
export class NamedSecret {
  readonly name: string;
  readonly kind: NamedSecretKind;
  readonly expiresAt?: Date;
  readonly reservedUntil?: Date;
  readonly host?: string;
  readonly envName?: string;
  readonly #value: string;

  constructor(init: NamedSecretInit) {
    this.name = init.name;
    this.kind = init.kind;
    this.#value = init.value;
    if (init.expiresAt !== undefined) this.expiresAt = init.expiresAt;
    if (init.reservedUntil !== undefined) this.reservedUntil = init.reservedUntil;
    if (init.host !== undefined) this.host = init.host;
    if (init.envName !== undefined) this.envName = init.envName;
  }

  /** The secret value — ship it, never log it. @example writeFileSync(path, secret.value, { mode: 0o400 }) */
  get value(): string {
    return this.#value;
  }

  /** UTF-8 size of the value (what Kubernetes counts against its 1 MiB limit). @example new NamedSecret({ name: "a", value: "é", kind: "env" }).byteLength // 2 */
  get byteLength(): number {
    return Buffer.byteLength(this.#value, "utf8");
  }

  /** A loggable description: everything but the value. @example logger.info({ secret: s.toJSON() }, "shipped") */
  toJSON(): Record<string, unknown> {
    return { name: this.name, kind: this.kind, host: this.host, envName: this.envName, expiresAt: this.expiresAt, reservedUntil: this.reservedUntil, value: "[redacted]" };
  }

  [inspect.custom](): string {
    return `NamedSecret ${inspect(this.toJSON())}`;
  }
}

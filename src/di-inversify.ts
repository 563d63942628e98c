import type { ContainerModule } from "inversify";
import { ConfigurationError } from "./errors";

/*
 * inversify is an optional peer dependency: the host's own copy (6, 7 or 8) is loaded on first use,
 * so importing scm-token-service never requires it, and the module's bindings land in the host's
 * container, not in a second copy of inversify. The majors differ in what they pass to a
 * ContainerModule's callback — inversify 6 `(bind, unbind, isBound, rebind, …)`, 7 and 8 one options
 * object `{ bind, unbind, isBound, rebind, … }` — and in what a dynamic value's factory gets — 6 a
 * Context whose `container.get` resolves, 7 and 8 a ResolutionContext with `get`. Only bind(),
 * toConstantValue(), toDynamicValue() and inSingletonScope() are used: the same in all three.
 */

type ServiceId = symbol | (abstract new (...args: never[]) => unknown);

/** The builder bind() returns; the subset used here, common to inversify 6, 7 and 8. */
interface BindingBuilder {
  toConstantValue(value: unknown): unknown;
  toDynamicValue(factory: (context: unknown) => unknown): { inSingletonScope(): unknown };
}

/** Registers one binding in the container the module is loaded into. */
export type Bind = (id: ServiceId) => BindingBuilder;

/** Resolves a service identifier in the container that is building a dynamic value. */
export type Resolve = <T>(id: symbol) => T;

/**
 * A ContainerModule of the host's inversify whose bindings `register` makes, whichever major the
 * host has. Throws ConfigurationError when inversify is not installed.
 */
export function hostContainerModule(register: (bind: Bind) => void): ContainerModule {
  const { ContainerModule: HostContainerModule } = loadInversify();
  const callback = (first: unknown): void => {
    // inversify 6 passes bind itself; 7 and 8 pass { bind, … }.
    const bind = (typeof first === "function" ? first : (first as { bind: unknown }).bind) as Bind;
    register(bind);
  };
  return new HostContainerModule(callback as ConstructorParameters<typeof HostContainerModule>[0]);
}

/** The resolver a dynamic value's factory gets: `context.get` (inversify 7, 8) or `context.container.get` (6). */
export function resolverOf(context: unknown): Resolve {
  const c = context as { get?: (id: symbol) => unknown; container?: { get(id: symbol): unknown } };
  if (typeof c.get === "function") return <T>(id: symbol) => c.get!(id) as T;
  if (c.container && typeof c.container.get === "function") return <T>(id: symbol) => c.container!.get(id) as T;
  throw new ConfigurationError("this inversify version passes an unknown context to dynamic values: use inversify 6, 7 or 8");
}

function loadInversify(): typeof import("inversify") {
  try {
    // Loaded lazily, and from the host's node_modules: see the comment at the top.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require("inversify") as typeof import("inversify");
  } catch (e) {
    if ((e as { code?: unknown }).code === "MODULE_NOT_FOUND" && /['"]inversify['"]/.test(String((e as Error).message))) {
      throw new ConfigurationError("tokenServiceModule needs inversify (6, 7 or 8), which is not installed: npm install inversify; or call createTokenService, which needs no container");
    }
    throw e;
  }
}

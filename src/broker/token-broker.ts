import type { IncomingMessage, ServerResponse } from "node:http";
import { systemClock, type Clock } from "../clock";
import { ConfigurationError, ReauthorizationRequiredError, TokenServiceError } from "../errors";
import { silentLogger, type Logger } from "../logger";
import { canonicalHost } from "../providers/normalize-host";
import type { TokenService } from "../token-service";
import { isRefusal, type BrokerAuthenticate, type BrokerGrant } from "./authenticate";
import { BrokerMetrics, type BrokerOutcome, type BrokerReleaseResult } from "./broker-metrics";
import { wireError } from "./error-status";
import { BodyError, readJsonBody, sendError, sendJson } from "./http-io";
import { BROKER_PATHS, type HandOutResponseBody, type ReleaseResponseBody } from "./protocol";
import { HandOutIndex, ReleaseHandles } from "./release-handles";

export interface TokenBrokerOptions {
  /** Decides who the caller is and what it may ask for (see BrokerAuthenticate). Required. */
  authenticate: BrokerAuthenticate;
  /**
   * Seals release handles (base64 of 32 random bytes, or the bytes). Give every replica the same key
   * so a release may reach any of them; default: a random key per broker (handles then work only on
   * the process that issued them).
   */
  releaseHandleKey?: string | Buffer;
  /** Largest accepted request body, in bytes (default 8192). */
  maxBodyBytes?: number;
  /** Requests one caller may have in flight; more are answered 429 (default 4). */
  maxConcurrentPerCaller?: number;
  /** Lifetime of a hand-out that asks for none, in minutes (default 10, the workspace-start default); capped by the caller's maximum. */
  defaultLifetimeMinutes?: number;
  /** Maximum lifetime for callers whose grant sets none, in minutes (default 60). */
  maxLifetimeMinutes?: number;
  /**
   * How long after a `deferred: true` release the hand-out is really released, in ms (default 60 000).
   * git calls its credential helper's `store` after the first successful request of a clone or push,
   * while later requests still use the token.
   */
  deferredReleaseMs?: number;
  /** Maximum time one hand-out may wait for other holders (the service's `maxWaitMs`; default the service's). */
  maxWaitMs?: number;
  /** The same prefix you gave the service (`metricsPrefix`), so the broker's metrics sit beside its own. */
  metricsPrefix?: string;
  logger?: Logger;
  /** The service's clock, when it is not the system clock (tests with FakeClock). */
  clock?: Clock;
}

/**
 * A plain Node request handler — `http.createServer(broker)`, `app.use("/scm-broker", broker)` —
 * plus close().
 */
export interface TokenBroker {
  (req: IncomingMessage, res: ServerResponse): void;
  /** Cancels pending deferred releases (their holds end with their reservation) and removes the broker's metrics. */
  close(): void;
}

const METRIC_PREFIX = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/**
 * The token broker ("doorman"): serves releasable hand-outs of the caller's SCM tokens and their
 * releases as JSON over HTTP (see src/broker/protocol.ts and docs/token-broker.md), so that git,
 * CLIs and IDEs inside a workspace ask for a token when they need one instead of holding a
 * long-lived copy. Every hand-out reserves the token for its lifetime, exactly as getTokenForHost
 * does in process.
 *
 * @example
 * const broker = createTokenBroker(service, {
 *   authenticate: (req) => workspaceByBearer(req.headers.authorization), // → { userId, hosts, … } or undefined
 *   releaseHandleKey: process.env.BROKER_HANDLE_KEY,
 *   metricsPrefix: "gitpod_",
 * });
 * http.createServer(broker).listen(8080);
 */
export function createTokenBroker(service: TokenService, options: TokenBrokerOptions): TokenBroker {
  if (typeof options?.authenticate !== "function") throw new ConfigurationError("createTokenBroker needs options.authenticate(request)", "authenticate");
  const maxBodyBytes = positiveInteger(options.maxBodyBytes, 8192, "maxBodyBytes");
  const maxConcurrent = positiveInteger(options.maxConcurrentPerCaller, 4, "maxConcurrentPerCaller");
  const deferredReleaseMs = nonNegative(options.deferredReleaseMs, 60_000, "deferredReleaseMs");
  const defaultLifetime = positiveNumber(options.defaultLifetimeMinutes, 10, "defaultLifetimeMinutes");
  const maxLifetime = positiveNumber(options.maxLifetimeMinutes, 60, "maxLifetimeMinutes");
  const prefix = options.metricsPrefix ?? "";
  if (typeof prefix !== "string" || (prefix !== "" && !METRIC_PREFIX.test(prefix))) throw new ConfigurationError("metricsPrefix must be empty or a Prometheus name prefix like \"gitpod_\"", "metricsPrefix");
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;
  const handles = new ReleaseHandles(options.releaseHandleKey);
  const index = new HandOutIndex();
  const metrics = new BrokerMetrics(service.metricsRegistry, prefix);
  const inFlight = new Map<string, number>();
  const deferred = new Set<NodeJS.Timeout>();
  let closed = false;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://broker.invalid").pathname.replace(/\/+$/, "");
    const route = path.endsWith(BROKER_PATHS.token) ? "token" : path.endsWith(BROKER_PATHS.release) ? "release" : undefined;
    if (!route) return sendError(res, 404, "NOT_FOUND", `unknown path; POST …${BROKER_PATHS.token} or …${BROKER_PATHS.release}`);
    if (req.method !== "POST") return sendError(res, 405, "METHOD_NOT_ALLOWED", "use POST", undefined, { Allow: "POST" });
    const count = (outcome: BrokerOutcome | BrokerReleaseResult, host = "other") =>
      route === "token" ? metrics.handOut(host, outcome as BrokerOutcome) : metrics.release(outcome as BrokerReleaseResult);

    const auth = await options.authenticate(req);
    if (!auth || isRefusal(auth)) {
      const status = auth?.status === 403 ? 403 : 401;
      count(route === "token" ? (status === 401 ? "unauthenticated" : "forbidden") : "refused");
      logger.info({ route, status }, "Token broker refused a caller");
      return sendError(res, status, status === 401 ? "UNAUTHENTICATED" : "FORBIDDEN", auth?.refuse ?? "not authenticated: send the workspace's broker credential (Authorization: Bearer …)");
    }
    const grant = checkGrant(auth);
    const callerKey = `${grant.callerId ?? grant.userId}\0${grant.userId}`;
    const running = inFlight.get(callerKey) ?? 0;
    if (running >= maxConcurrent) {
      count(route === "token" ? "too_many_requests" : "refused");
      return sendError(res, 429, "TOO_MANY_REQUESTS", `at most ${maxConcurrent} requests of one caller at a time; retry shortly`, 1);
    }
    inFlight.set(callerKey, running + 1);
    try {
      let body: Record<string, unknown>;
      try {
        body = (await readJsonBody(req, maxBodyBytes)) as Record<string, unknown>;
      } catch (e) {
        if (!(e instanceof BodyError)) throw e;
        count(route === "token" ? "bad_request" : "refused");
        return sendError(res, e.status, e.code, e.message, undefined, e.status === 413 ? { Connection: "close" } : {});
      }
      if (route === "token") await handOut(res, grant, callerKey, body, count);
      else await release(res, grant, callerKey, body, count);
    } finally {
      const left = (inFlight.get(callerKey) ?? 1) - 1;
      if (left <= 0) inFlight.delete(callerKey);
      else inFlight.set(callerKey, left);
    }
  }

  async function handOut(res: ServerResponse, grant: BrokerGrant, callerKey: string, body: Record<string, unknown>, count: (o: BrokerOutcome, host?: string) => void): Promise<void> {
    const host = typeof body.host === "string" ? canonicalHost(body.host) : undefined;
    const allowed = grant.hosts.map(canonicalHost);
    if (!host) {
      count("bad_request");
      return sendError(res, 400, "BAD_REQUEST", "the body needs \"host\": the SCM host, e.g. \"bitbucket.example.com\"");
    }
    if (!allowed.includes(host)) {
      count("forbidden");
      return sendError(res, 403, "FORBIDDEN", `this caller may not ask for tokens of ${JSON.stringify(host.slice(0, 100))}; allowed: ${allowed.join(", ") || "(none)"}`);
    }
    const scopes = body.scopes;
    if (scopes !== undefined && (!Array.isArray(scopes) || !scopes.every((s) => typeof s === "string"))) {
      count("bad_request", host);
      return sendError(res, 400, "BAD_REQUEST", "\"scopes\" must be an array of strings");
    }
    const notAllowed = grant.scopes && (scopes as string[] | undefined)?.filter((s) => !grant.scopes!.includes(s));
    if (notAllowed && notAllowed.length > 0) {
      count("forbidden", host);
      return sendError(res, 403, "FORBIDDEN", `this caller may not ask for the scope(s) ${notAllowed.map((s) => JSON.stringify(s.slice(0, 100))).join(", ")}`);
    }
    const callerMax = grant.maxLifetimeMinutes ?? maxLifetime;
    const lifetimeMinutes = body.lifetimeMinutes ?? Math.min(defaultLifetime, callerMax);
    if (typeof lifetimeMinutes !== "number" || !Number.isFinite(lifetimeMinutes) || lifetimeMinutes <= 0) {
      count("bad_request", host);
      return sendError(res, 400, "BAD_REQUEST", "\"lifetimeMinutes\" must be a number of minutes > 0");
    }
    if (lifetimeMinutes > callerMax) {
      count("forbidden", host);
      return sendError(res, 403, "FORBIDDEN", `this caller may ask for at most ${callerMax} minutes (asked for ${lifetimeMinutes})`);
    }
    try {
      const token = await service.getTokenForHost(grant.userId, host, {
        lifetimeMinutes,
        ...(scopes === undefined ? {} : { scopes: scopes as string[] }),
        ...(options.maxWaitMs === undefined ? {} : { maxWaitMs: options.maxWaitMs }),
        releasable: true,
      });
      if (!token) {
        count("no_token", host);
        return sendError(res, 404, "NO_TOKEN", `no token is stored for ${host}: connect ${host} to your account first`);
      }
      const releaseHandle = handles.seal(token.handOut, callerKey);
      const untilMs = (token.reservedUntilDate ?? token.expiryDate ?? new Date(clock.now().getTime() + lifetimeMinutes * 60_000)).getTime();
      index.remember(callerKey, handles.digest(callerKey, host, token.value), releaseHandle, untilMs, clock.now().getTime());
      const response: HandOutResponseBody = {
        token: token.value,
        username: token.username ?? null,
        expiresAt: token.expiryDate?.toISOString() ?? null,
        reservedUntil: token.reservedUntilDate?.toISOString() ?? null,
        scopes: token.scopes,
        releaseHandle,
      };
      count("handed_out", host);
      sendJson(res, 200, response);
    } catch (e) {
      if (!(e instanceof TokenServiceError)) throw e;
      const wire = wireError(e, clock.now().getTime());
      count(e instanceof ReauthorizationRequiredError ? "reauthorization_required" : wire.status === 503 ? "unavailable" : wire.status === 400 ? "bad_request" : "error", host);
      logger.warn({ host, code: e.code, status: wire.status }, "Token broker hand-out failed");
      sendError(res, wire.status, wire.code, wire.message, wire.retryAfterSeconds);
    }
  }

  async function release(res: ServerResponse, grant: BrokerGrant, callerKey: string, body: Record<string, unknown>, count: (r: BrokerReleaseResult) => void): Promise<void> {
    let handle: string | undefined;
    if (typeof body.releaseHandle === "string") {
      handle = body.releaseHandle;
      index.forget(callerKey, handle);
    } else if (typeof body.host === "string" && typeof body.token === "string") {
      handle = index.take(callerKey, handles.digest(callerKey, canonicalHost(body.host), body.token), clock.now().getTime());
      if (!handle) {
        // Not handed out by this broker to this caller, or already released or ended: nothing to do.
        count("unknown_token");
        return sendJson(res, 200, { released: false } satisfies ReleaseResponseBody);
      }
    } else {
      count("invalid_handle");
      return sendError(res, 400, "BAD_REQUEST", "the body needs \"releaseHandle\" (or \"host\" and \"token\")");
    }
    const ref = handles.open(handle, callerKey);
    if (!ref || ref.userId !== grant.userId) {
      count("invalid_handle");
      return sendError(res, 403, "RELEASE_HANDLE_INVALID", "this release handle was not issued to this caller (or was altered); release only your own hand-outs");
    }
    if (body.deferred === true && deferredReleaseMs > 0 && !closed) {
      const timer = setTimeout(() => {
        deferred.delete(timer);
        service.releaseReservation(ref).then(
          (released) => metrics.release(released ? "released" : "not_held"),
          (e: unknown) => {
            metrics.release("error");
            logger.warn({ host: ref.host, code: e instanceof TokenServiceError ? e.code : "unexpected" }, "Token broker deferred release failed; the hold ends with its reservation");
          },
        );
      }, deferredReleaseMs);
      timer.unref();
      deferred.add(timer);
      count("deferred");
      return sendJson(res, 200, { released: true } satisfies ReleaseResponseBody);
    }
    try {
      const released = await service.releaseReservation(ref);
      count(released ? "released" : "not_held");
      sendJson(res, 200, { released } satisfies ReleaseResponseBody);
    } catch (e) {
      if (!(e instanceof TokenServiceError)) throw e;
      const wire = wireError(e, clock.now().getTime());
      count("error");
      logger.warn({ host: ref.host, code: e.code, status: wire.status }, "Token broker release failed");
      sendError(res, wire.status, wire.code, wire.message, wire.retryAfterSeconds);
    }
  }

  const broker = ((req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((e: unknown) => {
      // Never the error's message: an unexpected error may quote anything.
      logger.error({ error: e instanceof Error ? e.name : typeof e }, "Token broker request failed unexpectedly");
      sendError(res, 500, "INTERNAL", "the token broker failed; its operators have the details in their logs");
    });
  }) as TokenBroker;
  broker.close = () => {
    closed = true;
    for (const timer of deferred) clearTimeout(timer);
    deferred.clear();
    metrics.close();
  };
  return broker;
}

function checkGrant(grant: BrokerGrant): BrokerGrant {
  if (typeof grant.userId !== "string" || grant.userId === "" || !Array.isArray(grant.hosts)) {
    throw new ConfigurationError("authenticate() must return { userId, hosts: [...] }, a { refuse } or nothing", "authenticate");
  }
  return grant;
}

function positiveInteger(value: unknown, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) throw new ConfigurationError(`${name} must be an integer > 0`, name);
  return value;
}

function positiveNumber(value: unknown, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) throw new ConfigurationError(`${name} must be a number > 0`, name);
  return value;
}

function nonNegative(value: unknown, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) throw new ConfigurationError(`${name} must be a number ≥ 0`, name);
  return value;
}

import { BROKER_PATHS, type BrokerErrorBody, type HandOutRequestBody, type HandOutResponseBody, type ReleaseRequestBody, type ReleaseResponseBody } from "./protocol";

/** The broker answered with an error (or not at all: `status` 0). The message is the broker's, never a token. */
export class BrokerRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = "BrokerRequestError";
  }
}

export interface BrokerClientOptions {
  /** The broker's base URL (where it is mounted), e.g. "https://ws-proxy.internal/scm-broker". */
  url: string;
  /** The caller's credential for the broker, sent as `Authorization: Bearer …`. */
  credential: string;
  /** Per request, in ms (default 60 000: a hand-out may wait for another holder's refresh). */
  timeoutMs?: number;
}

/**
 * A small client of the token broker's protocol (what `scm-token-service git-credential` uses):
 * for CLIs and IDE extensions inside a workspace.
 *
 * @example
 * const broker = new BrokerClient({ url: process.env.SCM_TOKEN_BROKER_URL!, credential: readFileSync(tokenFile, "utf8").trim() });
 * const handOut = await broker.handOut({ host: "gitlab.com", lifetimeMinutes: 5 });
 * try { await callGitLab(handOut.token); } finally { await broker.release({ releaseHandle: handOut.releaseHandle }); }
 */
export class BrokerClient {
  private readonly base: string;

  constructor(private readonly options: BrokerClientOptions) {
    const url = new URL(options.url);
    if (url.protocol !== "https:" && url.protocol !== "http:") throw new TypeError("the broker URL must be http(s)://…");
    this.base = url.href.replace(/\/+$/, "");
  }

  async handOut(request: HandOutRequestBody): Promise<HandOutResponseBody> {
    const handOut = await this.post<HandOutResponseBody>(BROKER_PATHS.token, request);
    if (typeof handOut.token !== "string" || handOut.token === "" || typeof handOut.releaseHandle !== "string") {
      throw new BrokerRequestError(200, "BAD_RESPONSE", "the token broker's answer has no token; check the broker URL");
    }
    return handOut;
  }

  release(request: ReleaseRequestBody): Promise<ReleaseResponseBody> {
    return this.post<ReleaseResponseBody>(BROKER_PATHS.release, request);
  }

  private async post<T>(path: string, body: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(this.base + path, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${this.options.credential}` },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 60_000),
        redirect: "error", // never follow a redirect with the credential
      });
    } catch (e) {
      const reason = e instanceof Error && e.name === "TimeoutError" ? "timed out" : (e instanceof Error && (e.cause as { code?: string } | undefined)?.code) || "unreachable";
      throw new BrokerRequestError(0, "UNREACHABLE", `the token broker at ${this.base} is ${reason === "timed out" ? "not answering (timed out)" : `unreachable (${reason})`}`);
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const error = (parsed as BrokerErrorBody | undefined)?.error;
      throw new BrokerRequestError(
        response.status,
        typeof error?.code === "string" ? error.code : "HTTP_ERROR",
        typeof error?.message === "string" ? error.message.slice(0, 500) : `the token broker answered HTTP ${response.status}`,
        typeof error?.retryAfterSeconds === "number" ? error.retryAfterSeconds : undefined,
      );
    }
    if (typeof parsed !== "object" || parsed === null) throw new BrokerRequestError(response.status, "BAD_RESPONSE", "the token broker answered something other than JSON; check the broker URL");
    return parsed as T;
  }
}

/**
 * Failures a test can queue for the next token requests. Each queued failure is
 * consumed by the next token request, whatever that request is. Failures that change no state are
 * answered as soon as the request arrives; `commit_then_*` act after the refresh committed (and are
 * simply dropped if the request fails validation first); `lock_timeout` answers where the lock is taken.
 */
export type InjectedFailure =
  /** 5xx (default 503) with no state change: a retry with the same RT succeeds. */
  | { kind: "fail_before_commit"; status?: number }
  /** Rotates, then answers 5xx (default 502): the client never sees the new tokens (GitLab, GitHub, BB DC: family lost). */
  | { kind: "commit_then_fail"; status?: number }
  /** Rotates, then destroys the socket. */
  | { kind: "commit_then_reset" }
  /** Never answers (until `close()`): the client's own timeout must fire. */
  | { kind: "hang" }
  /** 200 with a truncated JSON body; no state change. */
  | { kind: "malformed_json" }
  /** 502 with a proxy's HTML page; no state change. */
  | { kind: "html_502" }
  /** 200 with an empty body; no state change. */
  | { kind: "empty_body" }
  /** 429 with `Retry-After` (default 60 s); no state change. */
  | { kind: "rate_limited"; retryAfterSeconds?: number }
  /** The BB DC global refresh lock timed out: the profile's `errors.lockTimeout` (500), no state change. */
  | { kind: "lock_timeout" };

export type InjectedFailureKind = InjectedFailure["kind"];

const KINDS: ReadonlySet<string> = new Set<InjectedFailureKind>([
  "fail_before_commit",
  "commit_then_fail",
  "commit_then_reset",
  "hang",
  "malformed_json",
  "html_502",
  "empty_body",
  "rate_limited",
  "lock_timeout",
]);

/** A FIFO of injected failures. */
export class FailureQueue {
  private readonly queue: InjectedFailure[] = [];

  push(failure: InjectedFailure, times: number): void {
    if (!KINDS.has(failure.kind)) throw new RangeError(`FakeScmServer.failNext: unknown failure kind "${String(failure.kind)}"`);
    if (!Number.isInteger(times) || times < 1) throw new RangeError(`FakeScmServer.failNext: times must be an integer >= 1, got ${times}`);
    const status = "status" in failure ? failure.status : undefined;
    if (status !== undefined && (!Number.isInteger(status) || status < 500 || status > 599)) {
      throw new RangeError(`FakeScmServer.failNext: status must be a 5xx code, got ${status}`);
    }
    for (let i = 0; i < times; i++) this.queue.push(failure);
  }

  /** The failure for the request that just arrived, if any. */
  take(): InjectedFailure | undefined {
    return this.queue.shift();
  }

  clear(): void {
    this.queue.length = 0;
  }
}

/** A 502 page as an nginx in front of the SCM would send it. */
export const HTML_502_PAGE =
  "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/** A token response cut off mid-string. Contains no real token. */
export const TRUNCATED_JSON = '{"access_token":"trunc';

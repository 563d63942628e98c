import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** Where Debian/Ubuntu and most distributions install git's smart-HTTP CGI. */
export const GIT_HTTP_BACKEND = ["/usr/lib/git-core/git-http-backend", "/usr/libexec/git-core/git-http-backend"].find((p) => existsSync(p));

export interface GitRequestInfo {
  method: string;
  /** e.g. "/repo.git/info/refs" or "/repo.git/git-upload-pack". */
  path: string;
  /** "git-upload-pack" (clone, fetch) or "git-receive-pack" (push). */
  service: string | undefined;
}

export interface GitHttpServerOptions {
  /** Directory holding the bare repositories. */
  projectRoot: string;
  /** Is this Basic-auth password a live access token? (The SCM decides.) */
  isLive(password: string): Promise<boolean>;
  /** Awaited before each request is authenticated: lets a test act in the middle of a clone. */
  beforeRequest?(info: GitRequestInfo): Promise<void>;
}

/**
 * git's smart-HTTP protocol on 127.0.0.1: git-http-backend as a CGI behind a Node server that
 * accepts only HTTP Basic credentials whose password the SCM says is a live access token — a
 * stand-in for Bitbucket/GitLab/GitHub's git endpoints.
 */
export class GitHttpServer {
  /** Every authenticated request: the password it used (tests compare tokens; never printed). */
  readonly accepted: { info: GitRequestInfo; password: string }[] = [];
  /** Requests refused because their password was not live. */
  rejected = 0;
  private readonly http: Server;
  private readonly sockets = new Set<Socket>();
  private port = 0;

  static async start(options: GitHttpServerOptions): Promise<GitHttpServer> {
    if (!GIT_HTTP_BACKEND) throw new Error("git-http-backend not found (install git)");
    const server = new GitHttpServer(options);
    await new Promise<void>((resolve, reject) => {
      server.http.once("error", reject);
      server.http.listen(0, "127.0.0.1", () => resolve());
    });
    server.port = (server.http.address() as AddressInfo).port;
    return server;
  }

  private constructor(private readonly options: GitHttpServerOptions) {
    this.http = createServer((req, res) => {
      this.handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    this.http.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  /** e.g. "http://127.0.0.1:41234" */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.http.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://git.invalid");
    const info: GitRequestInfo = {
      method: req.method ?? "GET",
      path: url.pathname,
      service: url.searchParams.get("service") ?? (/\/(git-(?:upload|receive)-pack)$/.exec(url.pathname)?.[1] || undefined),
    };
    await this.options.beforeRequest?.(info);
    const credentials = parseBasic(req.headers.authorization);
    if (!credentials || !(await this.options.isLive(credentials.password))) {
      if (credentials) this.rejected++;
      req.resume();
      res.writeHead(401, { "WWW-Authenticate": 'Basic realm="git"', "Content-Type": "text/plain" }).end("Authentication required\n");
      return;
    }
    this.accepted.push({ info, password: credentials.password });
    await this.runBackend(req, res, url, credentials.username);
  }

  private runBackend(req: IncomingMessage, res: ServerResponse, url: URL, user: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: this.options.projectRoot,
        GIT_HTTP_EXPORT_ALL: "1",
        GIT_CONFIG_NOSYSTEM: "1",
        HOME: this.options.projectRoot,
        REQUEST_METHOD: req.method ?? "GET",
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        REMOTE_USER: user, // enables receive-pack (push) for authenticated users
        REMOTE_ADDR: "127.0.0.1",
        ...(req.headers["content-length"] ? { CONTENT_LENGTH: req.headers["content-length"] } : {}),
        ...(req.headers["content-encoding"] ? { HTTP_CONTENT_ENCODING: String(req.headers["content-encoding"]) } : {}),
        ...(req.headers["git-protocol"] ? { GIT_PROTOCOL: String(req.headers["git-protocol"]) } : {}),
      };
      const cgi = spawn(GIT_HTTP_BACKEND!, [], { env, stdio: ["pipe", "pipe", "ignore"] });
      req.pipe(cgi.stdin);
      cgi.stdin.on("error", () => undefined);
      let head = Buffer.alloc(0);
      let headersDone = false;
      cgi.stdout.on("data", (chunk: Buffer) => {
        if (headersDone) {
          res.write(chunk);
          return;
        }
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf("\r\n\r\n") >= 0 ? head.indexOf("\r\n\r\n") + 4 : head.indexOf("\n\n") >= 0 ? head.indexOf("\n\n") + 2 : -1;
        if (end < 0) return;
        headersDone = true;
        let status = 200;
        const headers: Record<string, string> = {};
        for (const line of head.subarray(0, end).toString("latin1").split(/\r?\n/)) {
          const colon = line.indexOf(":");
          if (colon <= 0) continue;
          const name = line.slice(0, colon).trim();
          const value = line.slice(colon + 1).trim();
          if (name.toLowerCase() === "status") status = Number.parseInt(value, 10);
          else headers[name] = value;
        }
        res.writeHead(status, headers);
        res.write(head.subarray(end));
      });
      cgi.on("error", reject);
      cgi.on("close", () => {
        if (!headersDone) res.writeHead(502);
        res.end();
        resolve();
      });
    });
  }
}

function parseBasic(header: string | undefined): { username: string; password: string } | undefined {
  const match = typeof header === "string" ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
  if (!match) return undefined;
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? undefined : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

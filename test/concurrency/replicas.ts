import { fork, type ChildProcess } from "node:child_process";
import { join, resolve } from "node:path";
import { KEY_ENV, type CallResult, type CallSpec, type FromReplica, type ReplicaConfig, type ToReplica } from "./protocol";
import { TS_CHILD_EXEC_ARGV } from "../support/child-process";

/**
 * Parent side of the replica protocol (protocol.ts): starts replica processes, talks to them, and
 * makes sure none outlives the test run, even when a test fails or mocha exits abruptly.
 */

const WORKER = join(__dirname, "replica-worker.ts");
const REPO_ROOT = resolve(__dirname, "..", "..");
const EXEC_ARGV = TS_CHILD_EXEC_ARGV;

const everyChild = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of everyChild) child.kill("SIGKILL");
});

type Waiter = { accept(m: FromReplica): boolean; resolve(m: FromReplica): void; reject(e: Error): void };

export class Replica {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly inbox: FromReplica[] = [];
  private waiters: Waiter[] = [];
  private stderr = "";
  private exitInfo: string | undefined;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    everyChild.add(child);
    child.stderr?.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString("utf8")).slice(-4000);
    });
    child.stdout?.on("data", () => undefined);
    child.on("message", (m: FromReplica) => this.deliver(m));
    this.exited = new Promise((resolveExit) => {
      child.once("exit", (code, signal) => {
        everyChild.delete(child);
        this.exitInfo = `exited (code ${code}, signal ${signal})`;
        this.failAll(new Error(`replica ${this.name} ${this.exitInfo}${this.stderr ? `; stderr: ${this.stderr}` : ""}`));
        resolveExit({ code, signal });
      });
    });
  }

  /** Forks a replica and waits (bounded) until it has loaded the library. */
  static async start(name: string, encryptionKey: string, timeoutMs = 30_000): Promise<Replica> {
    const child = fork(WORKER, [], {
      cwd: REPO_ROOT,
      execArgv: EXEC_ARGV,
      env: { ...process.env, [KEY_ENV]: encryptionKey },
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    const replica = new Replica(name, child);
    await replica.next("ready", timeoutMs);
    return replica;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  send(message: ToReplica): void {
    if (!this.alive || !this.child.connected) throw new Error(`replica ${this.name} is gone (${this.exitInfo ?? "disconnected"})`);
    this.child.send(message);
  }

  /** The next message of `type` (and matching `match`), within `timeoutMs`; rejects if the replica dies or reports a failure. */
  next<T extends FromReplica["type"]>(type: T, timeoutMs: number, match: (m: Extract<FromReplica, { type: T }>) => boolean = () => true): Promise<Extract<FromReplica, { type: T }>> {
    const accept = (m: FromReplica): boolean => m.type === type && match(m as Extract<FromReplica, { type: T }>);
    const queued = this.inbox.findIndex(accept);
    if (queued >= 0) return Promise.resolve(this.inbox.splice(queued, 1)[0] as Extract<FromReplica, { type: T }>);
    if (!this.alive) return Promise.reject(new Error(`replica ${this.name} ${this.exitInfo}`));
    return new Promise((resolveNext, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`replica ${this.name}: no "${type}" within ${timeoutMs} ms${this.stderr ? `; stderr: ${this.stderr}` : ""}`));
      }, timeoutMs);
      const waiter: Waiter = {
        accept,
        resolve: (m) => {
          clearTimeout(timer);
          resolveNext(m as Extract<FromReplica, { type: T }>);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.push(waiter);
    });
  }

  async configure(config: ReplicaConfig, timeoutMs = 20_000): Promise<void> {
    this.send({ type: "configure", config });
    await this.next("configured", timeoutMs);
  }

  /** SIGKILL, and wait until the process is really gone. */
  async kill(): Promise<void> {
    if (!this.alive) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }

  private deliver(m: FromReplica): void {
    if (m.type === "failed") {
      this.failAll(new Error(`replica ${this.name} failed during ${m.stage}: ${m.message}`));
      return;
    }
    const waiter = this.waiters.find((w) => w.accept(m));
    if (waiter) {
      this.waiters = this.waiters.filter((w) => w !== waiter);
      waiter.resolve(m);
    } else {
      this.inbox.push(m);
    }
  }

  private failAll(error: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(error);
  }
}

/** Starts `count` replicas in parallel; if one fails to start, kills the others. */
export async function startReplicas(count: number, encryptionKey: string, prefix = "replica"): Promise<Replica[]> {
  const started = await Promise.allSettled(Array.from({ length: count }, (_, i) => Replica.start(`${prefix}-${i}`, encryptionKey)));
  const replicas = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const failure = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failure) {
    await killReplicas(replicas);
    throw failure.reason;
  }
  return replicas;
}

export async function killReplicas(replicas: readonly Replica[]): Promise<void> {
  await Promise.all(replicas.map((r) => r.kill()));
}

let roundCounter = 0;

/** A fresh round number (unique in this process). */
export function nextRound(): number {
  return ++roundCounter;
}

/**
 * Arms every replica with its callers, waits until all are armed (the barrier), then releases them all
 * at once. Resolves once they are released, with the pending results (each replica's list in the order
 * of its `calls`).
 */
export async function startRound(
  replicas: readonly Replica[],
  userId: string,
  callsFor: (replicaIndex: number) => CallSpec[],
  timeoutMs = 20_000,
): Promise<{ results: Promise<CallResult[][]> }> {
  const round = nextRound();
  for (const [i, r] of replicas.entries()) r.send({ type: "arm", round, userId, calls: callsFor(i) });
  await Promise.all(replicas.map((r) => r.next("armed", timeoutMs, (m) => m.round === round)));
  const pending = replicas.map((r) => r.next("results", timeoutMs, (m) => m.round === round));
  for (const r of replicas) r.send({ type: "go", round });
  const results = Promise.all(pending).then((messages) => messages.map((m) => m.results));
  results.catch(() => undefined); // the caller awaits it; never an unhandled rejection meanwhile
  return { results };
}

/** startRound, then wait for every result. */
export async function runRound(
  replicas: readonly Replica[],
  userId: string,
  callsFor: (replicaIndex: number) => CallSpec[],
  timeoutMs = 20_000,
): Promise<CallResult[][]> {
  return (await startRound(replicas, userId, callsFor, timeoutMs)).results;
}

import { fork, type ChildProcess } from "node:child_process";
import { join, resolve } from "node:path";
import type { FromWorker, ToWorker, WorkerConfig, WorkerResult } from "./conformance-worker";
import { TS_CHILD_EXEC_ARGV } from "../support/child-process";

/** Parent side of conformance-worker.ts: forks the processes and makes sure none outlives the run. */

const WORKER = join(__dirname, "conformance-worker.ts");
const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

export class Worker {
  private readonly inbox: FromWorker[] = [];
  private waiting: ((m: FromWorker) => void) | undefined;
  private stderr = "";

  private constructor(private readonly child: ChildProcess) {
    children.add(child);
    child.on("message", (m: FromWorker) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(m);
      } else this.inbox.push(m);
    });
    child.stderr?.on("data", (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-2000)));
    child.once("exit", () => children.delete(child));
  }

  static async start(): Promise<Worker> {
    const child = fork(WORKER, [], {
      cwd: resolve(__dirname, "..", ".."),
      execArgv: TS_CHILD_EXEC_ARGV,
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    const worker = new Worker(child);
    await worker.expect("ready");
    return worker;
  }

  async configure(config: WorkerConfig): Promise<void> {
    this.send({ type: "configure", config });
    await this.expect("configured");
  }

  async arm(userId: string, callers: number, lifetimeMinutes: number): Promise<void> {
    this.send({ type: "arm", userId, callers, lifetimeMinutes });
    await this.expect("armed");
  }

  go(): Promise<WorkerResult[]> {
    this.send({ type: "go" });
    return this.expect("results").then((m) => (m as Extract<FromWorker, { type: "results" }>).results);
  }

  kill(): void {
    this.child.kill("SIGKILL");
  }

  private send(m: ToWorker): void {
    this.child.send(m);
  }

  private async expect(type: FromWorker["type"], timeoutMs = 90_000): Promise<FromWorker> {
    const m = this.inbox.shift() ?? (await new Promise<FromWorker>((resolveMessage, reject) => {
      const timer = setTimeout(() => reject(new Error(`conformance worker: no "${type}" within ${timeoutMs} ms; stderr: ${this.stderr}`)), timeoutMs);
      this.waiting = (message) => {
        clearTimeout(timer);
        resolveMessage(message);
      };
    }));
    if (m.type === "failed") throw new Error(`conformance worker failed: ${m.message}`);
    if (m.type !== type) throw new Error(`conformance worker: expected "${type}", got "${m.type}"`);
    return m;
  }
}

/**
 * Hooks that hold a refresh request between two steps, so that race windows are hit
 * deterministically, without sleeps:
 *
 *   parse + authenticate → look up RT → [lock] → validate → **afterValidate** → commit → [unlock]
 *   → **afterCommit** → respond
 *
 * While a request is held at `afterValidate` it still holds its lock (the family's, or BB DC's
 * global one), exactly as a slow transaction would.
 */
export type PausePoint = "afterValidate" | "afterCommit";

export interface PauseHandle {
  /** Resolves when a refresh request arrives at the point. Rejects if the server closes first. */
  reached: Promise<void>;
  /** Lets the held request continue (or lets it pass straight through if it has not arrived yet). */
  release(): void;
}

interface PendingPause {
  readonly handle: PauseHandle;
  arrive(): void;
  fail(error: Error): void;
  readonly released: Promise<void>;
}

export class PausePoints {
  private readonly pending: Record<PausePoint, PendingPause[]> = { afterValidate: [], afterCommit: [] };
  private readonly all = new Set<PendingPause>();

  /** Arms a pause for the next refresh request that reaches `point`. Several arms queue up, one request each. */
  arm(point: PausePoint): PauseHandle {
    if (point !== "afterValidate" && point !== "afterCommit") {
      throw new RangeError(`FakeScmServer.pauseAt: unknown point "${String(point)}"`);
    }
    let arrive!: () => void;
    let fail!: (error: Error) => void;
    const reached = new Promise<void>((resolve, reject) => {
      arrive = resolve;
      fail = reject;
    });
    reached.catch(() => undefined); // nobody has to await `reached`; a rejection on close() must not go unhandled
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const pause: PendingPause = { handle: { reached, release }, arrive, fail, released };
    this.pending[point].push(pause);
    this.all.add(pause);
    return pause.handle;
  }

  /** Called by a request at `point`: waits if a pause is armed there, else returns at once. */
  async pass(point: PausePoint): Promise<void> {
    const pause = this.pending[point].shift();
    if (!pause) return;
    pause.arrive();
    await pause.released;
    this.all.delete(pause);
  }

  /** Releases every held request; pauses nobody reached reject their `reached`. */
  releaseAll(): void {
    for (const pause of this.all) {
      pause.fail(new Error("FakeScmServer closed before a request reached the pause point"));
      pause.handle.release();
    }
    this.all.clear();
    this.pending.afterValidate.length = 0;
    this.pending.afterCommit.length = 0;
  }
}

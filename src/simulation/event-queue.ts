/**
 * A binary min-heap of events ordered by time, then by insertion order. The insertion-order tie-break
 * makes events at the same millisecond run in a fixed order, which keeps runs deterministic.
 *
 * @example
 * const queue = new EventQueue<string>();
 * queue.push(5_000, "b"); queue.push(1_000, "a");
 * queue.pop(); // → { atMs: 1000, payload: "a" }
 */
export class EventQueue<T> {
  private readonly times: number[] = [];
  private readonly seqs: number[] = [];
  private readonly payloads: T[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.times.length;
  }

  push(atMs: number, payload: T): void {
    this.times.push(atMs);
    this.seqs.push(this.nextSeq++);
    this.payloads.push(payload);
    this.siftUp(this.times.length - 1);
  }

  pop(): { atMs: number; payload: T } | undefined {
    const n = this.times.length;
    if (n === 0) return undefined;
    const top = { atMs: this.times[0], payload: this.payloads[0] };
    const lastTime = this.times.pop() as number;
    const lastSeq = this.seqs.pop() as number;
    const lastPayload = this.payloads.pop() as T;
    if (n > 1) {
      this.times[0] = lastTime;
      this.seqs[0] = lastSeq;
      this.payloads[0] = lastPayload;
      this.siftDown(0);
    }
    return top;
  }

  private less(a: number, b: number): boolean {
    return this.times[a] < this.times[b] || (this.times[a] === this.times[b] && this.seqs[a] < this.seqs[b]);
  }

  private swap(a: number, b: number): void {
    [this.times[a], this.times[b]] = [this.times[b], this.times[a]];
    [this.seqs[a], this.seqs[b]] = [this.seqs[b], this.seqs[a]];
    [this.payloads[a], this.payloads[b]] = [this.payloads[b], this.payloads[a]];
  }

  private siftUp(index: number): void {
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(index: number): void {
    const n = this.times.length;
    let i = index;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < n && this.less(left, smallest)) smallest = left;
      if (right < n && this.less(right, smallest)) smallest = right;
      if (smallest === i) return;
      this.swap(i, smallest);
      i = smallest;
    }
  }
}

/**
 * Latency samples in milliseconds and their percentiles (nearest-rank on the sorted samples).
 * Growable Float64Array: no per-sample allocation, so recording does not disturb what is measured.
 */
export class LatencyRecorder {
  private samples = new Float64Array(1 << 14);
  private size = 0;

  get count(): number {
    return this.size;
  }

  record(ms: number): void {
    if (this.size === this.samples.length) {
      const bigger = new Float64Array(this.samples.length * 2);
      bigger.set(this.samples);
      this.samples = bigger;
    }
    this.samples[this.size++] = ms;
  }

  /** Adds every sample of `other` (e.g. to merge the segments of one cell). */
  addAll(other: LatencyRecorder): void {
    for (let i = 0; i < other.size; i++) this.record(other.samples[i]);
  }

  summary(): LatencySummary {
    return summarize(this.samples.subarray(0, this.size));
  }
}

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** p in [0, 100]; nearest rank on an ascending array. NaN for no samples. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function summarize(values: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (let i = 0; i < sorted.length; i++) sum += sorted[i];
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1],
    mean: sorted.length === 0 ? Number.NaN : sum / sorted.length,
  };
}

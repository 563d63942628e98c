import { Counter, Histogram, type CounterConfiguration, type HistogramConfiguration, type Registry } from "prom-client";
import { ConfigurationError } from "../errors";

type AnyMetric = Counter<string> | Histogram<string>;

/**
 * Per registry, the metrics the library registered there and how many services use each. Two
 * services on one registry share one set of metrics (prom-client refuses a second registration of a
 * name); the last one to close removes them.
 */
const registered = new WeakMap<Registry, Map<string, { metric: AnyMetric; users: number }>>();

/**
 * The metrics of one TokenMetrics on a registry the caller owns: each is the one already on the
 * registry when it has the same type, labels (and buckets), otherwise a new one. A name taken by a
 * different metric is a ConfigurationError. release() removes what this instance registered once no
 * other service uses it; metrics registered by someone else are used, never removed.
 */
export class SharedMetrics {
  /** Names this instance counts as a user of (in `registered`). */
  private readonly used: string[] = [];
  private released = false;

  constructor(private readonly registry: Registry) {}

  counter<T extends string>(config: CounterConfiguration<T>): Counter<T> {
    return this.acquire(config.name, "counter", config.labelNames ?? [], undefined, () => new Counter({ ...config, registers: [this.registry] })) as Counter<T>;
  }

  histogram<T extends string>(config: HistogramConfiguration<T> & { buckets: number[] }): Histogram<T> {
    return this.acquire(config.name, "histogram", config.labelNames ?? [], config.buckets, () => new Histogram({ ...config, registers: [this.registry] })) as unknown as Histogram<T>;
  }

  /** Stops using the metrics; removes from the registry those no other service uses. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    const mine = registered.get(this.registry);
    for (const name of this.used.splice(0)) {
      const entry = mine?.get(name);
      if (!entry || --entry.users > 0) continue;
      mine!.delete(name);
      // Only if it is still our object: someone may have removed and replaced it meanwhile.
      if (this.registry.getSingleMetric(name) === entry.metric) this.registry.removeSingleMetric(name);
    }
  }

  private acquire(name: string, type: "counter" | "histogram", labelNames: readonly string[], buckets: readonly number[] | undefined, create: () => AnyMetric): AnyMetric {
    if (this.released) throw new Error("SharedMetrics used after release()");
    const existing = this.registry.getSingleMetric(name) as (AnyMetric & { type?: unknown; labelNames?: unknown; upperBounds?: unknown }) | undefined;
    let mine = registered.get(this.registry);
    if (!mine) registered.set(this.registry, (mine = new Map()));
    if (!existing) {
      const metric = create();
      mine.set(name, { metric, users: 1 });
      this.used.push(name);
      return metric;
    }
    const mismatch = describeMismatch(existing, type, labelNames, buckets);
    if (mismatch) {
      this.release(); // give back what this instance took before failing
      throw new ConfigurationError(
        `metricsRegistry already has a metric "${name}" with ${mismatch}; pass another metricsPrefix or another registry`,
      );
    }
    const entry = mine.get(name);
    if (entry?.metric === existing) {
      entry.users++;
      this.used.push(name);
    }
    // else: registered by someone else (another copy of the library, the application): used, never removed.
    return existing;
  }
}

function describeMismatch(
  existing: { type?: unknown; labelNames?: unknown; upperBounds?: unknown },
  type: string,
  labelNames: readonly string[],
  buckets: readonly number[] | undefined,
): string | undefined {
  if (existing.type !== type) return `type ${String(existing.type)} (the library's is a ${type})`;
  const theirs = Array.isArray(existing.labelNames) ? [...(existing.labelNames as string[])].sort() : [];
  const ours = [...labelNames].sort();
  if (theirs.join(",") !== ours.join(",")) return `labels [${theirs.join(", ")}] (the library's are [${ours.join(", ")}])`;
  if (buckets && Array.isArray(existing.upperBounds) && (existing.upperBounds as number[]).join(",") !== [...buckets].join(",")) {
    return `buckets [${(existing.upperBounds as number[]).join(", ")}] (the library's are [${buckets.join(", ")}])`;
  }
  return undefined;
}

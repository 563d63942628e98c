/**
 * A tiny seeded PRNG (mulberry32) so that a simulation run is reproducible from its seed alone.
 * Math.random is never used: same seed → byte-identical report.
 *
 * @example
 * const rng = new Prng(deriveSeed(42, userIndex));
 * const gapMs = rng.exponential(120_000);
 */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [min, max). */
  uniform(min: number, max: number): number {
    return min + (max - min) * this.next();
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  /** Exponential with the given mean: the gaps of a Poisson process. */
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.next());
  }

  /** Poisson-distributed count (Knuth; fine for the small means used here). */
  poisson(mean: number): number {
    const limit = Math.exp(-mean);
    let count = 0;
    let product = this.next();
    while (product > limit) {
      count++;
      product *= this.next();
    }
    return count;
  }
}

/** murmur3's fmix32: a bijective avalanche of 32 bits. */
function mix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Mixes a run seed with stream keys (user index, purpose) into an independent 32-bit seed, so each
 * user's arrivals do not depend on how many users or policies run before it. Seed and keys are each
 * avalanched before they are combined: a plain XOR would make (seed 2, user 0) equal (seed 3, user 1).
 */
export function deriveSeed(seed: number, ...keys: number[]): number {
  let h = mix32(seed ^ 0x9e3779b9);
  for (const key of keys) h = mix32(h ^ mix32((key + 0x632be5ab) >>> 0));
  return h;
}

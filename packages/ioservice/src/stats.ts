// Counters and latency histograms per operation, cheap enough for every request.

/** Buckets of powers of two microseconds: [0,1), [1,2), [2,4) ... [2^29, ∞). */
const BUCKETS = 31;

export interface OperationStats {
  count: number;
  errors: number;
  /** Latency percentiles in µs (the upper bound of the histogram bucket they fall in). */
  p50Us: number;
  p99Us: number;
  maxUs: number;
  /** Counts per bucket: bucket i holds latencies in [2^(i-1), 2^i) µs (bucket 0: under 1 µs). */
  histogram: number[];
}

export class OperationCounter {
  count = 0;
  errors = 0;
  maxUs = 0;
  readonly histogram = new Array<number>(BUCKETS).fill(0);

  record(us: number, failed: boolean): void {
    this.count++;
    if (failed) this.errors++;
    if (us > this.maxUs) this.maxUs = us;
    const b = us < 1 ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log2(us)) + 1);
    this.histogram[b]!++;
  }

  /**
   * This counter and native counts added (`[count, errors, max µs,
   * ...histogram]`, as the native side keeps them), as a new counter.
   */
  plus(native: ArrayLike<number>): OperationCounter {
    const c = new OperationCounter();
    c.count = this.count + (native[0] ?? 0);
    c.errors = this.errors + (native[1] ?? 0);
    c.maxUs = Math.max(this.maxUs, native[2] ?? 0);
    for (let b = 0; b < BUCKETS; b++) c.histogram[b] = this.histogram[b]! + (native[3 + b] ?? 0);
    return c;
  }

  #percentile(q: number): number {
    const want = Math.ceil(this.count * q);
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.histogram[b]!;
      if (seen >= want && seen > 0) return 2 ** b;
    }
    return 0;
  }

  snapshot(): OperationStats {
    return { count: this.count, errors: this.errors, p50Us: this.#percentile(0.5), p99Us: this.#percentile(0.99), maxUs: this.maxUs, histogram: [...this.histogram] };
  }
}

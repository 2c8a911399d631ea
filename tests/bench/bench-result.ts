/** One measured figure of a benchmark module; `run()` of each tests/bench/*.bench.ts returns a list of them. */
export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  /** The figure asked for, as text (`>= 50000`, `< 20`). */
  target?: string;
  pass?: boolean;
  notes?: string;
}

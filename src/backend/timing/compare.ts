// Every strategy on one model and package (the library call behind `gyges compare` and the
// report's strategy sections): compile and simulate each in turn. A strategy that cannot map
// the model onto the grid (GY3003: Optimus on a non-square grid, Megatron's flat ring on an
// odd number of dies, a split finer than one per die) is a row with its reason, not a failure;
// any other error stops the comparison.

import { compile, type Compilation, type CompileOptions } from '../../compile.js';
import { GygesError } from '../../diagnostics/diagnostic.js';
import { STRATEGIES, type Strategy } from '../../passes/pass.js';
import { NO_PROGRESS, type Progress } from '../../util/progress.js';
import { simulateCompiled, type SimulationReport } from './simulate.js';

export interface StrategyRun {
  readonly strategy: Strategy;
  readonly report: SimulationReport | null;
  /** Why the strategy cannot run on this package, or null when it ran. */
  readonly error: string | null;
}

export interface CompareOptions {
  /** One tick per strategy (`start` is the caller's: it may have more steps of its own). */
  readonly progress?: Progress;
  /**
   * Sees each strategy's compilation with its report, while it is still at hand: callers that
   * need more than the report take it here, so the compilations need not all be kept.
   */
  readonly visit?: (c: Compilation, report: SimulationReport) => void;
}

/** Compile and simulate `model` under every strategy, in STRATEGIES order. */
export function compareStrategies(model: string, opts: Omit<CompileOptions, 'strategy' | 'progress'>, how: CompareOptions = {}): StrategyRun[] {
  const progress = how.progress ?? NO_PROGRESS;
  return STRATEGIES.map((strategy) => {
    let run: StrategyRun;
    try {
      const c = compile(model, { ...opts, strategy });
      const report = simulateCompiled(c);
      how.visit?.(c, report);
      run = { strategy, report, error: null };
    } catch (e) {
      if (!(e instanceof GygesError && e.code === 'GY3003')) throw e;
      run = { strategy, report: null, error: e.message };
    }
    progress.tick(strategy);
    return run;
  });
}

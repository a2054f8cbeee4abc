// The `gyges` command: a thin layer that parses flags (commander) and calls the library.
// Exit codes: 0 success, 1 user error (one line on stderr, no stack trace), 2 internal error.
// `--json` prints exactly one JSON object on stdout.

import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { error, GygesError } from '../diagnostics/diagnostic.js';
import { parseTopology, simulateCollective, type CollectiveSimResult } from '../backend/timing/collective.js';
import { loadModel, type LoadOptions } from '../frontend/load.js';
import { modelStats, type ModelStats } from '../ir/stats.js';
import { OPS } from '../ir/ops.js';
import { loadTarget, describeTarget, targetToJSON, type Target } from '../target/index.js';
import { loadAccelerators } from '../target/plugin.js';
import { STRATEGIES } from '../passes/pass.js';
import { DEFAULT_PIPELINE } from '../passes/index.js';
import { runCompile, type CompileFlags } from './compile-command.js';
import { runCompare, runSimulate, type CompareFlags, type SimulateFlags } from './simulate-command.js';
import { runVerify, VerificationFailed, type VerifyFlags } from './verify-command.js';
import { runInspect, type InspectFlags } from './inspect-command.js';
import type { ReportFlags } from './report-command.js';
import { bytes, si, table } from '../util/format.js';
import { terminalProgress } from './progress.js';
import { NO_PROGRESS, type Progress } from '../util/progress.js';

export interface CliIO {
  out(text: string): void;
  err(text: string): void;
  /** A progress bar named `name` for a long command; none when absent. */
  progress?(name: string): Progress;
}

const processIO: CliIO = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  progress: (name) => terminalProgress(name),
};

/** Run the CLI on `argv` (without node and script); resolves to the exit code. */
export async function main(argv: readonly string[], io: CliIO = processIO): Promise<number> {
  const program = buildProgram(io);
  if (argv.length === 0) {
    io.out(program.helpInformation());
    return 1;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (e) {
    return reportFailure(e, io);
  }
}

function reportFailure(e: unknown, io: CliIO): number {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
    const text = e.message.replace(/^error: /, '').replace(/\n[\s\S]*$/, '');
    io.err(`error GY9001: ${text} (see 'gyges --help')\n`);
    return 1;
  }
  if (e instanceof GygesError) {
    io.err(`${e.message}\n`);
    return 1;
  }
  const message = e instanceof Error ? e.message : String(e);
  io.err(`${message.startsWith('internal error') ? message : `internal error: ${message}`}\n`);
  if (process.env.GYGES_DEBUG && e instanceof Error && e.stack) io.err(`${e.stack}\n`);
  return 2;
}

// -- option parsers ---------------------------------------------------------------------

function positiveInt(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number ≥ 1.');
  return n;
}

function wholeBytes(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a whole number of bytes.');
  return n;
}

function nonNegative(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number ≥ 0.');
  return n;
}

function collectSetting(text: string, acc: Record<string, number>): Record<string, number> {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.+)$/.exec(text);
  const value = m ? Number(m[2]) : NaN;
  if (!m || !Number.isFinite(value)) throw new InvalidArgumentError('expected NAME=NUMBER.');
  return { ...acc, [m[1]!]: value };
}

/** `NAME=2x32`: the whole shape of an ONNX model input (the name may itself hold '='). */
function collectInputShape(text: string, acc: Record<string, number[]>): Record<string, number[]> {
  const at = text.lastIndexOf('=');
  const name = text.slice(0, at);
  const dims = text.slice(at + 1).split('x').map(Number);
  if (at <= 0 || !/^\d+(x\d+)*$/.test(text.slice(at + 1)) || dims.some((d) => !Number.isSafeInteger(d) || d < 1)) {
    throw new InvalidArgumentError('expected NAME=DIMS, e.g. input_ids=2x128 (positive sizes joined by x).');
  }
  return { ...acc, [name]: dims };
}

interface ModelFlags {
  batch?: number;
  seq?: number;
  set?: Record<string, number>;
  inputShape?: Record<string, number[]>;
  json?: boolean;
}

/** --hw and --accelerator: the package a command compiles for. */
function withHwFlags(cmd: Command): Command {
  return cmd.requiredOption('--hw <HW>', 'a preset such as hecaton-4x4-standard, or a hardware file').option('--accelerator <FILE>', ACCELERATOR_HELP, collectFiles, []);
}

/** --strategy, --mode, --optimizer, --pipeline: how compile and report run the pass pipeline. */
function withPipelineFlags(cmd: Command, strategyHelp: string): Command {
  return cmd
    .addOption(new Option('--strategy <S>', strategyHelp).choices([...STRATEGIES]).default('hecaton'))
    .addOption(new Option('--mode <M>', 'train adds backward and update; inference compiles forward only').choices(['train', 'inference']))
    .addOption(new Option('--optimizer <O>', 'weight update of training').choices(['sgd', 'adam']))
    .option('--pipeline <TEXT>', `passes to run, e.g. '${DEFAULT_PIPELINE}'`);
}

function withModelFlags(cmd: Command): Command {
  return cmd
    .option('--batch <B>', "batch size (sets a .gy model's `batch` constant, or axis 0 of an .onnx model's dynamic inputs)", positiveInt)
    .option('--seq <L>', "sequence length (sets a .gy model's `seq` constant, or axis 1 of an .onnx model's dynamic inputs)", positiveInt)
    .option('--set <NAME=VALUE>', 'set a top-level constant of a .gy model (repeatable)', collectSetting, {})
    .option('--input-shape <NAME=DIMS>', 'shape of an .onnx model input with dynamic axes, e.g. input_ids=2x128 (repeatable)', collectInputShape, {});
}

interface HwFlags {
  hw: string | Target;
  accelerator?: string[];
}

/** `--accelerator FILE` (repeatable): die types from the user's files (src/target/plugin.ts). */
const ACCELERATOR_HELP =
  "a die from a file: an ES module (.js, .mjs) exporting the die's fields and optional gemm/vector cost functions, or a .json/.yaml die description; " +
  "it replaces the package's die, or is a die type a hardware file's layout names (repeatable)";

function collectFiles(v: string, acc: string[]): string[] {
  return [...acc, v];
}

/** The flags with `hw` loaded into a Target when accelerator files come with it. */
async function resolveHw<F extends HwFlags>(flags: F): Promise<F> {
  const files = flags.accelerator ?? [];
  if (files.length === 0 || typeof flags.hw !== 'string') return flags;
  return { ...flags, hw: loadTarget(flags.hw, await loadAccelerators(files)) };
}

function loadOptions(flags: ModelFlags): LoadOptions {
  return { batch: flags.batch, seq: flags.seq, set: flags.set, inputShapes: flags.inputShape };
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

// -- commands ---------------------------------------------------------------------------

function buildProgram(io: CliIO): Command {
  const bar = (name: string): Progress => io.progress?.(name) ?? NO_PROGRESS;
  const program = new Command('gyges')
    .description('Compile transformer models to per-die programs for chiplet packages.')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err, outputError: () => {} })
    .showHelpAfterError(false);

  withModelFlags(program.command('stats').argument('<MODEL>', 'a .gy, .gyir or .onnx model'))
    .description('Parameters, layers, op counts and FLOPs per training iteration of a model.')
    .option('--json', 'print one JSON object')
    .action((model: string, flags: ModelFlags) => {
      const m = loadModel(model, loadOptions(flags));
      const stats = modelStats(m);
      io.out(flags.json ? json(stats) : formatStats(stats));
    });

  withPipelineFlags(withHwFlags(withModelFlags(program.command('compile').argument('<MODEL>', 'a .gy, .gyir or .onnx model'))
    .description('Compile a model for a hardware target through the pass pipeline and report what each pass decided.')), 'how work is distributed')
    .option('--print-ir', 'print the IR after the last pass that ran')
    .option('--print-after-all', 'print the IR after every pass')
    .option('--print-after <PASS>', 'print the IR after PASS (repeatable)', (v: string, acc: string[]) => [...acc, v], [])
    .option('--dump-dir <DIR>', 'write the IR after every pass to DIR/NN-PASS.gyir')
    .option('--stop-after <PASS>', 'stop the pipeline after PASS')
    .option('--verify-each', 'run the IR verifier after every pass')
    .option('-o, --out <DIR>', 'write one program per die (die-I-J.json and .txt) and manifest.json into DIR (with --emit: the file to write)')
    .addOption(new Option('--emit <FORMAT>', 'print the IR graph after the last pass that ran instead: dot is Graphviz, fusion groups as clusters').choices(['dot']))
    .action(async (model: string, flags: ModelFlags & CompileFlags & HwFlags) => {
      io.out(runCompile(model, await resolveHw(flags), loadOptions(flags), bar('compile')));
    });

  program
    .command('inspect')
    .argument('<DIR>', 'a program folder written by compile -o')
    .description("Summarise a program folder, or with --die show one die's program under the source location of each instruction.")
    .option('--die <i,j>', "show die [i, j]'s program, grouped by source location (DSL line or ONNX node)")
    .option('--json', 'print one JSON object')
    .action((dir: string, flags: InspectFlags) => io.out(runInspect(dir, flags)));

  withHwFlags(withModelFlags(program.command('simulate').argument('<MODEL>', 'a .gy, .gyir or .onnx model, or a program folder written by compile -o'))
    .description('Compile a model and run its per-die programs on the timing backend: latency, energy, and where the time went.'))
    .addOption(new Option('--strategy <S>', 'how work is distributed').choices([...STRATEGIES]).default('hecaton'))
    .option('--json', 'print one JSON object (with a `blocks` list per Transformer block and phase)')
    .option('--trace <FILE>', 'write a Chrome-trace / Perfetto JSON timeline: one track group per die')
    .option('--trace-dies <LIST>', "trace only these dies, as ROW,COL pairs separated by ';' (e.g. '0,0;31,31'): a whole iteration of a large package within the trace's size limit")
    .option('--no-extrapolate', 'simulate every loop iteration instead of jumping over repeating ones (same results, slower)')
    .action(async (model: string, flags: ModelFlags & SimulateFlags & HwFlags) => {
      io.out(runSimulate(model, await resolveHw(flags), loadOptions(flags), (line) => io.err(`${line}\n`), bar('simulate')));
    });

  withHwFlags(withModelFlags(program.command('verify').argument('<MODEL>', 'a .gy, .gyir or .onnx model'))
    .description('Run the per-die programs on numbers and compare outputs, gradients and updated weights with references (exit 2 when they differ).'))
    .addOption(new Option('--strategy <S>', 'how work is distributed').choices([...STRATEGIES]).default('hecaton'))
    .addOption(new Option('--optimizer <O>', 'weight update of training').choices(['sgd', 'adam']))
    .option('--pipeline <TEXT>', `passes to run, e.g. 'train,fuse,minibatch{size=1},tile2d,collectives,schedule'`)
    .option('--seed <N>', 'seed of the numbers fed to inputs and weights', positiveInt)
    .option('--json', 'print one JSON object')
    .action(async (model: string, flags: ModelFlags & VerifyFlags & HwFlags) => {
      const { text, report } = await runVerify(model, await resolveHw(flags), loadOptions(flags));
      io.out(text);
      if (!report.ok) throw new VerificationFailed(report);
    });

  withHwFlags(withModelFlags(program.command('compare').argument('<MODEL>', 'a .gy, .gyir or .onnx model'))
    .description('Simulate every strategy on one package: latency and energy normalised to hecaton, SRAM overflows marked (Fig. 8).'))
    .option('--json', 'print one JSON object')
    .action(async (model: string, flags: ModelFlags & CompareFlags & HwFlags) => {
      io.out(runCompare(model, await resolveHw(flags), loadOptions(flags), bar('compare')));
    });

  // Loaded on use, like experiment: the charting library is large.
  withPipelineFlags(withHwFlags(withModelFlags(program.command('report').argument('<MODEL>', 'a .gy, .gyir or .onnx model'))
    .description('Compile and simulate a model under every strategy and write one self-contained HTML report: charts of latency and energy per block, SRAM and link heatmaps, the pass pipeline, a timeline.')), 'the strategy shown in detail (all are compared)')
    .requiredOption('-o, --out <FILE>', 'the HTML file to write')
    .action(async (model: string, flags: ModelFlags & ReportFlags & HwFlags) => {
      const { runReport } = await import('./report-command.js');
      io.out(await runReport(model, await resolveHw(flags), loadOptions(flags), bar('report')));
    });

  program
    .command('target')
    .argument('<HW>', 'a preset such as hecaton-4x4-standard, or a hardware file')
    .description('Describe a hardware target after validation.')
    .option('--accelerator <FILE>', ACCELERATOR_HELP, collectFiles, [])
    .option('--json', 'print one JSON object')
    .action(async (hw: string, flags: { json?: boolean; accelerator?: string[] }) => {
      const t = loadTarget(hw, await loadAccelerators(flags.accelerator ?? []));
      io.out(flags.json ? json(targetToJSON(t)) : `${describeTarget(t)}\n`);
    });

  program
    .command('collective')
    .argument('<KIND>', 'all-gather, reduce-scatter, all-reduce or all-to-all')
    .description('Simulate one collective alone on a ring or 2-D torus of uniform links, through the event engine.')
    .requiredOption('--topology <T>', 'ring:N or torus:RxC')
    .requiredOption('--bytes <B>', "each die's buffer in bytes (for all-gather, each die's input shard)", wholeBytes)
    // Defaults: α = 10 ns (paper §VI-E, Fig. 10); 64 GB/s, a UCIe 1.1 standard-package x16 link at 32 GT/s.
    .option('--alpha-ns <A>', 'latency of each link, ns', nonNegative, 10)
    .option('--bandwidth-GBps <G>', 'bandwidth of each link and direction, 10^9 B/s', nonNegative, 64)
    .option('--algorithm <A>', "instead of the topology's ring or 2-D algorithm: 'exchange' (all-reduce: every buffer sent both ways round the ring, on a torus round its row's and then its column's, and summed) or 'bidirectional' (ring:N: the ring algorithm both ways at once)")
    .option('--json', 'print one JSON object')
    .action((kind: string, flags: { topology: string; bytes: number; alphaNs: number; bandwidthGBps: number; algorithm?: string; json?: boolean }) => {
      const kinds = { 'all-gather': 'all_gather', 'reduce-scatter': 'reduce_scatter', 'all-reduce': 'all_reduce', 'all-to-all': 'all_to_all' } as const;
      const k = kinds[kind as keyof typeof kinds];
      if (!k) throw error('GY9001', `unknown collective '${kind}': expected ${Object.keys(kinds).join(', ')}`);
      const algorithms = ['exchange', 'bidirectional'] as const;
      const chosen = algorithms.find((a) => a === flags.algorithm);
      if (flags.algorithm !== undefined && chosen === undefined) throw error('GY9001', `unknown algorithm '${flags.algorithm}': expected ${algorithms.join(' or ')} (or no --algorithm)`);
      const algorithm = chosen === undefined ? {} : { algorithm: chosen };
      const r = simulateCollective({ kind: k, topology: parseTopology(flags.topology), bytes: flags.bytes, alphaS: flags.alphaNs * 1e-9, bandwidthBytesPerS: flags.bandwidthGBps * 1e9, ...algorithm });
      io.out(flags.json ? json(r) : formatCollective(r));
    });

  program
    .command('ops')
    .description('List the IR ops: operands, attributes and what each computes.')
    .option('--json', 'print one JSON object')
    .action((flags: { json?: boolean }) => io.out(flags.json ? json(opTableJSON()) : formatOps()));

  // Loaded on use: the charting library is large and only this command needs it.
  program
    .command('experiment')
    .argument('<NAME>', 'table3, fig7, fig8, fig9, fig10 or fig11')
    .description("Run one of the paper's experiments (§VI): print its table, and with -o write NAME.csv and a chart NAME.svg.")
    .option('--json', 'print one JSON object: {"experiment": NAME, "rows": [...]}')
    .option('-o, --out <DIR>', 'write NAME.csv and NAME.svg into DIR')
    .action(async (name: string, flags: { json?: boolean; out?: string }) => {
      const { runExperiment } = await import('./experiment-command.js');
      io.out(await runExperiment(name, flags, bar(name)));
    });

  return program;
}

function formatStats(s: ModelStats): string {
  const rows: string[][] = [
    ['model', s.model],
    ['parameters', `${si(s.params)} (${bytes(s.param_bytes)})`],
    ['layers', String(s.layers)],
    ['linear ops', String(s.linear)],
    ['attention cores', String(s.attention)],
    ['ops', String(s.ops)],
    ['inputs', s.inputs.map((i) => `${i.name}: ${i.dtype}[${i.shape.join(', ')}]`).join('; ')],
    ['FLOPs forward', si(s.flops_forward, 'FLOP')],
    ['FLOPs backward', si(s.flops_backward, 'FLOP')],
    ['FLOPs update (SGD)', si(s.flops_update, 'FLOP')],
    ['FLOPs per iteration', si(s.flops_per_iteration, 'FLOP')],
  ];
  return `${table(rows, true)}\n`;
}

function formatCollective(r: CollectiveSimResult): string {
  return `${table(
    [
      ['collective', `${r.kind} on ${r.topology} (${r.algorithm}, ${r.dies} dies)`],
      ['time', `${(r.time_s * 1e6).toFixed(3)} µs`],
      ['steps', String(r.steps)],
      ['sent per die', bytes(r.bytes_per_die_sent)],
      ['busiest link', `${bytes(r.link_bytes_max)}, ${(r.link_utilisation_max * 100).toFixed(1)}% busy`],
    ],
    true,
  )}\n`;
}

function opTableJSON() {
  return {
    ops: Object.values(OPS).map((d) => ({
      name: d.name,
      summary: d.summary,
      category: d.category,
      operands: d.operands.map((o) => ({ name: o.name, optional: !!o.optional, variadic: !!o.variadic, weight: !!o.weight })),
      attrs: Object.entries(d.attrs).map(([name, a]) => ({ name, kind: a.kind, default: a.default ?? null, optional: !!a.optional, one_of: a.oneOf ?? null, doc: a.doc })),
    })),
  };
}

function formatOps(): string {
  return Object.values(OPS)
    .map((d) => {
      const operands = d.operands.map((o) => (o.variadic ? `${o.name}...` : o.optional ? `${o.name}?` : o.name)).join(', ');
      const attrs = Object.entries(d.attrs).map(([n, a]) => `    ${n}: ${a.kind}${a.default !== undefined ? ` = ${JSON.stringify(a.default)}` : a.optional ? ' (optional)' : ''}${a.oneOf ? ` one of ${a.oneOf.join('|')}` : ''} — ${a.doc}`);
      return [`${d.name}(${operands})  [${d.category}]  ${d.summary}`, ...attrs].join('\n');
    })
    .join('\n') + '\n';
}

// The training graph (DESIGN.md §1, pass 2): reverse-mode automatic differentiation of the
// forward module, then one optimizer update per parameter, so that later passes tile, fuse
// and schedule the backward work exactly as they do the forward. The host feeds the gradient
// of every output (`grad.<output>`): the paper trains layer by layer, so there is no loss op.
//
// Gradients flow only to float values that depend on a parameter. Each forward op, visited
// in reverse topological order, adds its backward ops: a dedicated gradient op from the op
// table (grads.ts) where the hardware cares (linear_grad computes dX and dW together), or a
// composition of forward ops (add passes dy through, transpose transposes back, ...).
// Partial gradients of a value used several times are summed with `add` before they flow on.

import type { Module, Op, Value } from '../ir/module.js';
import { isFloat } from '../ir/types.js';
import { assertNever } from '../diagnostics/diagnostic.js';
import type { Pass } from './pass.js';
import { Backward, differentiate, gradientFlow, gradName, setPhase, type Site } from './train-rules.js';

export interface TrainOptions {
  mode: 'train' | 'inference';
  optimizer: 'sgd' | 'adam';
}

type Optimizer = TrainOptions['optimizer'];

/** Add the backward graph and the weight update to `m` in place (train), or only mark it (inference). */
export function deriveTraining(m: Module, opts: TrainOptions): Module {
  switch (opts.mode) {
    case 'inference':
      for (const op of m.ops()) setPhase(op, 'fwd');
      m.notes['train.mode'] = 'inference';
      return m;
    case 'train':
      addBackwardAndUpdate(m, opts.optimizer);
      m.notes['train.mode'] = 'train';
      m.notes['train.optimizer'] = opts.optimizer;
      return m;
    default:
      return assertNever(opts.mode);
  }
}

function addBackwardAndUpdate(m: Module, optimizer: Optimizer): void {
  const forward = [...m.ops()];
  const outputs = [...m.outputs];
  for (const op of forward) setPhase(op, 'fwd');
  const b = new Backward(m, gradientFlow(m, forward));
  for (const o of outputs) {
    if (b.needs.has(o)) b.contribute(o, m.addInput(gradName(o), o.type, o.loc));
  }
  for (const op of [...forward].reverse()) differentiate(b, op);
  m.setOutputs([...outputs, ...updateParams(b, optimizer, new Set(forward))]);
}

// ---------------------------------------------------------------------------------------
// The weight update.

/** One update per float param, in declaration order; returns the new values (outputs). */
function updateParams(b: Backward, optimizer: Optimizer, forward: ReadonlySet<Op>): Value[] {
  return [...b.m.params]
    .filter((p) => isFloat(p.type.dtype))
    .flatMap((p) => {
      const site = { loc: p.loc, layer: commonLayer(b.m.users(p).filter((op) => forward.has(op))) };
      const g = b.total(p, site) ?? b.zerosLike(p.type, gradName(p), site);
      return update(b, p, g, optimizer, site);
    });
}

/** The layer of a parameter: its users' layer when they agree on one. */
function commonLayer(users: readonly Op[]): number | undefined {
  const layers = new Set(users.map((op) => op.layer));
  return layers.size === 1 ? [...layers][0] : undefined;
}

function update(b: Backward, p: Value, g: Value, optimizer: Optimizer, site: Site): Value[] {
  switch (optimizer) {
    case 'sgd':
      return b.emit('sgd', [p, g], {}, [`${p.name}.new`], site, 'update');
    case 'adam': {
      const m1 = b.m.addState(`${p.name}.adam_m`, p.type, p.loc);
      const m2 = b.m.addState(`${p.name}.adam_v`, p.type, p.loc);
      return b.emit('adam', [p, g, m1, m2], {}, [`${p.name}.new`, `${m1.name}.new`, `${m2.name}.new`], site, 'update');
    }
    default:
      return assertNever(optimizer);
  }
}

export const train: Pass = {
  name: 'train',
  summary: 'derive the backward graph (dX and dW of every Linear, attention, norm and activation gradients) and the weight update',
  options: {
    mode: { kind: 'string', default: 'train', oneOf: ['train', 'inference'], doc: 'train adds backward and update; inference keeps the forward graph' },
    optimizer: { kind: 'string', default: 'sgd', oneOf: ['sgd', 'adam'], doc: 'weight update; adam keeps two moments per weight in DRAM' },
  },
  requires: [],
  establishes: ['train.mode'],
  run(m, ctx, options) {
    deriveTraining(m, { mode: options.mode as TrainOptions['mode'], optimizer: options.optimizer as Optimizer });
    const counts = { fwd: 0, bwd: 0, update: 0 };
    for (const op of m.ops()) counts[(op.notes?.['train.phase'] as keyof typeof counts | undefined) ?? 'fwd']++;
    const what = options.mode === 'train' ? `training graph (${String(options.optimizer)})` : 'inference graph';
    ctx.report('train', `${what}: ${counts.fwd} forward, ${counts.bwd} backward and ${counts.update} update ops`);
  },
};

// Every pass, registered once. The default pipeline is the one sequence below; each step
// notes why it sits where it does.

import type { Pass } from './pass.js';
import { parsePipeline, type PipelineStep } from './pipeline.js';
import { deriveTraining } from './train.js';
import { fuse } from './fuse.js';
import { minibatch } from './minibatch.js';
import { tile2d } from './tile2d.js';
import { collectives } from './collectives.js';

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
    deriveTraining(m, { mode: options.mode as 'train' | 'inference', optimizer: options.optimizer as 'sgd' | 'adam' });
    const counts = { fwd: 0, bwd: 0, update: 0 };
    for (const op of m.ops()) counts[(op.notes?.['train.phase'] as keyof typeof counts | undefined) ?? 'fwd']++;
    ctx.report('train', `${options.mode === 'train' ? `training graph (${String(options.optimizer)})` : 'inference graph'}: ${counts.fwd} forward, ${counts.bwd} backward and ${counts.update} update ops`);
  },
};

/** All passes, in pipeline order. */
export const PASSES = [train, fuse, minibatch, tile2d, collectives] as const satisfies readonly Pass[];

/** The default pipeline. */
export const DEFAULT_PIPELINE = [
  'train', // forward, backward and update must all exist before anything is grouped or tiled
  'fuse', // groups follow from weight-buffer capacity, which counts weight gradients in training
  'minibatch', // sized from the activation footprint of the tiling the grid will get
  'tile2d', // shards every op; needs the fusion groups to restart hecaton's orientation per group
  'collectives', // turns every sharding change tile2d left into explicit collective ops
].join(',');

export function defaultPipeline(overrides: { mode?: string; optimizer?: string } = {}): PipelineStep[] {
  const opts = Object.entries(overrides).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  const text = opts.length ? DEFAULT_PIPELINE.replace(/^train/, `train{${opts.join(',')}}`) : DEFAULT_PIPELINE;
  return parsePipeline(text, PASSES);
}

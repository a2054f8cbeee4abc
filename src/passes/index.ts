// Every pass, registered once. The default pipeline is the one sequence below; each step
// notes why it sits where it does.

import type { Pass } from './pass.js';
import { parsePipeline, type PipelineStep } from './pipeline.js';
import { qkv } from './qkv.js';
import { train } from './train.js';
import { fuse } from './fuse.js';
import { minibatch } from './minibatch.js';
import { tile2d } from './tile2d.js';
import { collectives } from './collectives.js';
import { schedule } from './schedule/index.js';

/** All passes, in pipeline order. */
export const PASSES = [qkv, train, fuse, minibatch, tile2d, collectives, schedule] as const satisfies readonly Pass[];

/** The default pipeline. */
export const DEFAULT_PIPELINE = [
  'qkv', // one Linear per attention core's projections: the forward graph the train pass differentiates
  'train', // forward, backward and update must all exist before anything is grouped or tiled
  'fuse', // groups follow from weight-buffer capacity, which counts weight gradients in training
  'minibatch', // sized from the activation footprint of the tiling the grid will get
  'tile2d', // shards every op; needs the fusion groups to restart hecaton's orientation per group
  'collectives', // turns every sharding change tile2d left into explicit collective ops
  'schedule', // orders each die's work into mini-batch loops, allocates buffers, emits programs: needs every collective explicit
].join(',');

export function defaultPipeline(overrides: { mode?: string; optimizer?: string } = {}): PipelineStep[] {
  const opts = Object.entries(overrides).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  const text = opts.length ? DEFAULT_PIPELINE.replace(/(^|,)train(,|$)/, `$1train{${opts.join(',')}}$2`) : DEFAULT_PIPELINE;
  return parsePipeline(text, PASSES);
}

// The ONNX frontend on exports it has never seen: every synthetic variant of
// test/support/onnx-families.ts (BERT, GPT-2 and Llama module code; opsets 14 to 18; static
// shapes or dynamic axes; constant folding on or off; LayerNormalization or its decomposition;
// external data; de-duplicated initializers) infers to concrete shapes, raises to the IR with
// the ops a hand-written model of the same network has, keeps exactly its trainable
// parameters, and compiles for a 2x2 Hecaton package.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compile } from '../../../src/compile.js';
import { GygesError } from '../../../src/diagnostics/diagnostic.js';
import { loadModel, type LoadOptions } from '../../../src/frontend/load.js';
import { inferGraph } from '../../../src/frontend/onnx/infer.js';
import { readOnnxModel } from '../../../src/frontend/onnx/model.js';
import type { Module } from '../../../src/ir/module.js';
import { modelStats } from '../../../src/ir/stats.js';
import { FAMILY_VARIANTS, type FamilyExport } from '../../support/onnx-families.js';

type Shapes = Readonly<Record<string, readonly number[]>>;
/** Load options with the ONNX input shapes (`--input-shape`). */
type OnnxLoadOptions = LoadOptions & { readonly inputShapes?: Shapes };

let dir: string;
const files = new Map<string, { m: FamilyExport; path: string }>();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gyges-onnx-frontend-'));
  for (const v of FAMILY_VARIANTS) {
    const m = v.make();
    files.set(v.id, { m, path: m.write(dir).path });
  }
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function load(path: string, inputShapes: Shapes): Module {
  const opts: OnnxLoadOptions = { inputShapes };
  return loadModel(path, opts);
}

/** What the raised IR of a variant must hold: the ops of the equivalent .gy model. */
interface Expected {
  readonly attention: number;
  readonly heads: number;
  /** kv_heads; for multi-head attention the attribute may also be left out. */
  readonly kvHeads: number;
  readonly causal: boolean;
  readonly linear: number;
  readonly layernorm: number;
  readonly rmsnorm: number;
  readonly gelu: number;
  readonly geluApproximate?: 'none' | 'tanh';
  readonly silu: number;
  /** rope ops and their heads attribute (queries, then keys, per layer). */
  readonly rope: number;
  /** Token-id lookups at least; lookups by constant ids (positions, a zero token-type buffer) may raise as embedding or as slice. */
  readonly embedding: readonly [number, number];
}

function expected(m: FamilyExport): Expected {
  const c = m.config;
  const L = c.layers;
  const hasInput = (n: string) => m.inputs.some((i) => i.name === n);
  switch (m.family) {
    case 'bert': {
      // Per layer: query, key, value (separate), attention output, intermediate, output; plus
      // the pooler's Gemm. LayerNorm after the embeddings and twice per layer (post-norm).
      const pooler = m.outputShapes(1, 1).pooler_output !== undefined;
      return {
        attention: L, heads: c.heads, kvHeads: c.heads, causal: false,
        linear: 6 * L + (pooler ? 1 : 0), layernorm: 1 + 2 * L, rmsnorm: 0,
        gelu: L, geluApproximate: 'none', silu: 0, rope: 0,
        embedding: [hasInput('token_type_ids') ? 2 : 1, 3],
      };
    }
    case 'gpt2': {
      // Per layer: the fused c_attn (one linear, split in three), c_proj, c_fc, mlp c_proj;
      // plus the LM head. Pre-norm: two LayerNorms per layer and ln_f.
      const hf = m.name.includes('-hf-');
      const tanh = hf || m.name.includes('tanh');
      return {
        attention: L, heads: c.heads, kvHeads: c.heads, causal: true,
        linear: 4 * L + 1, layernorm: 2 * L + 1, rmsnorm: 0,
        gelu: L, geluApproximate: tanh ? 'tanh' : 'none', silu: 0, rope: 0,
        embedding: [1, 2],
      };
    }
    case 'llama':
      // Per layer: q, k, v, o, gate, up, down; plus the LM head. RMSNorm twice per layer and
      // the final norm; SiLU once per layer; rope on q and on k in every layer.
      return {
        attention: L, heads: c.heads, kvHeads: c.kvHeads, causal: true,
        linear: 7 * L + 1, layernorm: 0, rmsnorm: 2 * L + 1,
        gelu: 0, silu: L, rope: 2 * L,
        embedding: [1, 1],
      };
  }
}

function counts(mod: Module): Record<string, number> {
  const out: Record<string, number> = {};
  for (const op of mod.ops()) out[op.kind] = (out[op.kind] ?? 0) + 1;
  return out;
}

describe('ONNX frontend on synthetic exports', () => {
  for (const v of FAMILY_VARIANTS) {
    describe(v.id, () => {
      const get = () => files.get(v.id)!;

      it('infers every value to a concrete shape, with shape arithmetic folded to numbers', () => {
        const { m, path } = get();
        const g = inferGraph(readOnnxModel(path), { inputShapes: m.inputShapes });
        for (const [name, shape] of Object.entries(m.outputShapes(m.config.batch, m.config.seq))) {
          expect(g.facts.get(name)?.dims, name).toEqual(shape);
        }
        // Every operand that is a shape, an index bound or a count must be known numbers.
        const shapeOperands: Record<string, readonly number[]> = {
          Reshape: [1], Expand: [1], ConstantOfShape: [0], Range: [0, 1, 2], Slice: [1, 2, 3, 4], Unsqueeze: [1], Split: [1], Trilu: [1],
        };
        for (const node of g.nodes) {
          for (const i of shapeOperands[node.opType] ?? []) {
            const input = node.inputs[i];
            if (input === undefined || input === '') continue;
            expect(g.facts.get(input)?.value, `${node.name} operand ${i} (${input})`).toBeDefined();
          }
        }
      });

      it('raises to the ops of the equivalent hand-written model', () => {
        const { m, path } = get();
        const mod = load(path, m.inputShapes);
        const e = expected(m);
        const n = counts(mod);
        const ops = mod.ops();
        expect(n.attention ?? 0, 'attention').toBe(e.attention);
        for (const a of ops.filter((o) => o.kind === 'attention')) {
          expect(a.attrs.heads, 'attention heads').toBe(e.heads);
          if (e.kvHeads !== e.heads) expect(a.attrs.kv_heads, 'attention kv_heads').toBe(e.kvHeads);
          else expect([undefined, e.heads]).toContain(a.attrs.kv_heads);
          expect(a.attrs.causal, 'attention causal').toBe(e.causal);
          // Every family scales scores by 1/√head_size: the attribute's default, or written out.
          const scale = a.attrs.scale as number | undefined;
          if (scale !== undefined) expect(scale, 'attention scale').toBeCloseTo(1 / Math.sqrt(m.config.hidden / m.config.heads), 6);
        }
        expect(n.linear ?? 0, 'linear').toBe(e.linear);
        expect(n.layernorm ?? 0, 'layernorm').toBe(e.layernorm);
        expect(n.rmsnorm ?? 0, 'rmsnorm').toBe(e.rmsnorm);
        expect(n.gelu ?? 0, 'gelu').toBe(e.gelu);
        for (const gl of ops.filter((o) => o.kind === 'gelu')) expect(gl.attrs.approximate, 'gelu approximate').toBe(e.geluApproximate);
        expect(n.silu ?? 0, 'silu').toBe(e.silu);
        expect(n.rope ?? 0, 'rope').toBe(e.rope);
        if (e.rope) {
          const heads = ops.filter((o) => o.kind === 'rope').map((o) => o.attrs.heads).sort();
          const want = Array.from({ length: m.config.layers }, () => [m.config.heads, m.config.kvHeads]).flat().sort();
          expect(heads, 'rope heads').toEqual(want);
        }
        expect(n.embedding ?? 0, 'embedding').toBeGreaterThanOrEqual(e.embedding[0]);
        expect(n.embedding ?? 0, 'embedding').toBeLessThanOrEqual(e.embedding[1]);
      });

      it('keeps exactly the trainable initializers as parameters', () => {
        const { m, path } = get();
        // Sum of the sizes of the stored weights left after the exporter's de-duplication
        // (a folded transposed copy of a tied weight counts: it is stored). Buffers (position
        // ids, causal-mask tables, rotary tables and inv_freq) are not parameters.
        expect(modelStats(load(path, m.inputShapes)).params).toBe(m.params);
      });

      it('compiles for hecaton-2x2-standard', () => {
        const { m, path } = get();
        const opts: OnnxLoadOptions & { hw: string } = { hw: 'hecaton-2x2-standard', inputShapes: m.inputShapes };
        const c = compile(path, opts);
        expect(c.passes.length).toBeGreaterThan(0);
        expect(modelStats(c.module).attention).toBeGreaterThanOrEqual(m.config.layers);
      });

      if (v.make().config.dynamicAxes) {
        it('binds dynamic axes to the given shapes, and asks for them when missing', () => {
          const { m, path } = get();
          const shapes = Object.fromEntries(m.inputs.map((i) => [i.name, [4, 8]]));
          const mod = load(path, shapes);
          for (const input of mod.inputs) expect(input.type.shape, input.name).toEqual([4, 8]);
          expect(counts(mod).attention).toBe(m.config.layers);
          // --batch and --seq bind the dynamic first and second axes of every input.
          const bySize = loadModel(path, { batch: 3, seq: 8 });
          for (const input of bySize.inputs) expect(input.type.shape, input.name).toEqual([3, 8]);
          let err: unknown;
          try {
            loadModel(path);
          } catch (e) {
            err = e;
          }
          expect(err).toBeInstanceOf(GygesError);
          expect((err as GygesError).code).toBe('GY5005');
        });
      }
    });
  }
});

// Synthetic ONNX exports of the transformer families the ONNX frontend must read: BERT-style
// encoders, GPT-2-style decoders and Llama-style decoders (RoPE, grouped-query attention,
// RMSNorm, SwiGLU). No PyTorch is needed: each generator lays the graph out node for node as
// torch.onnx.export (the TorchScript exporter of PyTorch 1.13 to 2.x) writes it for the
// corresponding module code, in eval mode, with:
//   - opsets 14 to 18 (Unsqueeze/Split/Slice operands as inputs; ReduceMean axes an attribute
//     below 18 and an input at 18; LayerNormalization from 17);
//   - static shapes or dynamic axes (dim_params 'batch' and 'sequence');
//   - do_constant_folding on (shape arithmetic over static sizes, weight transposes and constant
//     subgraphs are folded into Constants and initializers) or off (every `x.size(i)` stays a
//     Shape→Gather, every nn.Linear weight stays a Transpose of the stored [out, in] tensor);
//   - the exporter's initializer de-duplication (equal tensors stored once, Identity nodes for
//     the others), and optionally external data in a sibling file.
// Weights are small and drawn from a seeded generator, so every file is reproducible.

import type { Dim, ElemType, TensorData, ValueDecl, WrittenModel } from './onnx-build.js';
import {
  attr, bool, f32, FLOAT32_MIN, i64, INT64_MAX, OnnxGraphBuilder, scalarF32, scalarI64, seededRandom, tensorBytes, typeCode, vecI64,
} from './onnx-build.js';

// ---------------------------------------------------------------------------------------
// Options common to every family.

export interface CommonOptions {
  readonly layers?: number;
  readonly hidden?: number;
  readonly heads?: number;
  readonly ffn?: number;
  readonly vocab?: number;
  /** Batch and sequence the export was traced with (the static sizes, or the nominal ones). */
  readonly batch?: number;
  readonly seq?: number;
  /** Rows of the position table, the stored causal-mask buffer and the rotary cache. */
  readonly maxPositions?: number;
  readonly opset?: 14 | 15 | 16 | 17 | 18;
  /** torch.onnx.export(dynamic_axes={...: {0: 'batch', 1: 'sequence'}}). */
  readonly dynamicAxes?: boolean;
  /** torch.onnx.export(do_constant_folding=...). */
  readonly constantFolding?: boolean;
  /** LayerNormalization op (opset ≥ 17 only) rather than the ReduceMean/Sub/Pow/... decomposition. */
  readonly layerNormOp?: boolean;
  /** Store initializers of 1 KiB and more in `<model>.onnx.data` beside the model. */
  readonly externalWeights?: boolean;
  /**
   * Norm weights as freshly constructed (ones, and zeros for biases), which the exporter's
   * de-duplication collapses into one initializer plus Identity nodes; otherwise random.
   */
  readonly freshNorms?: boolean;
  readonly seed?: number;
  /** File stem; defaults to a name built from the options. */
  readonly name?: string;
}

interface Resolved {
  readonly layers: number;
  readonly hidden: number;
  readonly heads: number;
  readonly ffn: number;
  readonly vocab: number;
  readonly batch: number;
  readonly seq: number;
  readonly maxPositions: number;
  readonly opset: number;
  readonly dynamicAxes: boolean;
  readonly constantFolding: boolean;
  readonly layerNormOp: boolean;
  readonly externalWeights: boolean;
  readonly freshNorms: boolean;
  readonly seed: number;
}

function resolveCommon(o: CommonOptions, ffnDefault: (h: number) => number): Resolved {
  const hidden = o.hidden ?? 64;
  const opset = o.opset ?? 17;
  const r: Resolved = {
    layers: o.layers ?? 2,
    hidden,
    heads: o.heads ?? 4,
    ffn: o.ffn ?? ffnDefault(hidden),
    vocab: o.vocab ?? 128,
    batch: o.batch ?? 2,
    seq: o.seq ?? 16,
    maxPositions: o.maxPositions ?? 32,
    opset,
    dynamicAxes: o.dynamicAxes ?? false,
    constantFolding: o.constantFolding ?? true,
    layerNormOp: (o.layerNormOp ?? opset >= 17) && opset >= 17,
    externalWeights: o.externalWeights ?? false,
    freshNorms: o.freshNorms ?? false,
    seed: o.seed ?? 1,
  };
  if (opset < 14 || opset > 18) throw new Error(`opset ${opset}: the generators write opsets 14 to 18`);
  if (r.hidden % r.heads !== 0) throw new Error(`hidden ${r.hidden} is not a multiple of ${r.heads} heads`);
  if (r.seq > r.maxPositions) throw new Error(`seq ${r.seq} exceeds maxPositions ${r.maxPositions}`);
  return r;
}

// ---------------------------------------------------------------------------------------
// What a generator returns.

export type Family = 'bert' | 'gpt2' | 'llama';

export interface FamilyExport {
  readonly name: string;
  readonly family: Family;
  readonly builder: OnnxGraphBuilder;
  readonly config: Resolved & { readonly kvHeads: number };
  /** Graph inputs as declared (dims symbolic under dynamic axes). */
  readonly inputs: readonly ValueDecl[];
  /** Concrete shapes of the graph inputs at the export's batch and sequence. */
  readonly inputShapes: Readonly<Record<string, number[]>>;
  /** Graph outputs with concrete shapes for a given batch and sequence. */
  outputShapes(batch: number, seq: number): Record<string, number[]>;
  /** Elements of all trainable initializers left after de-duplication (buffers excluded). */
  readonly params: number;
  /** Writes `<dir>/<name>.onnx` (and `<name>.onnx.data` with external weights). */
  write(dir: string): WrittenModel;
}

// ---------------------------------------------------------------------------------------
// The exporter's recurring patterns.

/** A traced Python int: a known size, and the 0-d int64 graph value holding it when it is not folded. */
interface Size {
  readonly value: number;
  readonly name?: string;
}

const known = (value: number): Size => ({ value });

class Exporter {
  readonly b: OnnxGraphBuilder;
  readonly o: Resolved;
  private readonly rand: () => number;

  constructor(o: Resolved) {
    this.o = o;
    this.b = new OnnxGraphBuilder({
      name: `main_graph`,
      opset: o.opset,
      producerVersion: o.opset >= 18 ? '2.1.0' : '1.13.1',
    });
    this.rand = seededRandom(o.seed);
  }

  /** do_constant_folding: static sizes, weight transposes and constant subgraphs fold. */
  get folds(): boolean {
    return this.o.constantFolding;
  }

  // --- values -------------------------------------------------------------------------

  /** A Python float constant (`x / 8.0`, `1.0 - mask`). */
  f(v: number): string {
    return this.b.constant(scalarF32(v));
  }

  /** A Python int constant used as a tensor (`x.size(0)` index, Trilu's k). */
  i(v: number | bigint): string {
    return this.b.constant(scalarI64(v));
  }

  ints(vs: readonly (number | bigint)[]): string {
    return this.b.constant(vecI64(vs));
  }

  op(opType: string, inputs: readonly string[], attrs: Parameters<OnnxGraphBuilder['op']>[2] = {}): string {
    return this.b.op(opType, inputs, attrs);
  }

  /** `t.unsqueeze(d)` / `t[:, None]`: axes are an input from opset 13. */
  unsqueeze(x: string, axes: readonly number[]): string {
    return this.op('Unsqueeze', [x, this.ints(axes)]);
  }

  /** `t.mean(dims, keepdim=True)`: ReduceMean's axes are an attribute below opset 18, an input at 18. */
  reduceMean(x: string, axes: readonly number[]): string {
    if (this.o.opset >= 18) return this.op('ReduceMean', [x, this.ints(axes)], { keepdims: attr.int(1) });
    return this.op('ReduceMean', [x], { axes: attr.ints(axes), keepdims: attr.int(1) });
  }

  /** `t.split(size, dim)`: the sizes are an input from opset 13. */
  split(x: string, sizes: readonly number[], axis: number): string[] {
    return this.b.node('Split', [x, this.ints(sizes)], { outputs: sizes.length, attrs: { axis: attr.int(axis) } });
  }

  /** `t[..., a:b]` on one axis: Slice(x, starts, ends, axes, steps) with 1-D int64 operands. */
  slice(x: string, axis: number, start: Size | bigint, end: Size | bigint): string {
    return this.op('Slice', [x, this.vec1(start), this.vec1(end), this.ints([axis]), this.ints([1])]);
  }

  private vec1(s: Size | bigint): string {
    if (typeof s === 'bigint') return this.ints([s]);
    return s.name === undefined ? this.ints([s.value]) : this.unsqueeze(s.name, [0]);
  }

  // --- traced sizes --------------------------------------------------------------------

  /**
   * `x.size(axis)`: Shape → Gather(scalar index). Folded to a constant when constant folding
   * is on and the axis is not dynamic (`dynamic` marks the batch and sequence axes).
   */
  size(x: string, axis: number, value: number, dynamic: boolean): Size {
    if (this.folds && !(dynamic && this.o.dynamicAxes)) return known(value);
    const shape = this.op('Shape', [x]);
    return { value, name: this.op('Gather', [shape, this.i(axis)], { axis: attr.int(0) }) };
  }

  batchOf(x: string, axis = 0): Size {
    return this.size(x, axis, this.o.batch, true);
  }

  seqOf(x: string, axis = 1): Size {
    return this.size(x, axis, this.o.seq, true);
  }

  /** Integer arithmetic on traced sizes (`C // n_head`, `n_kv * n_rep`, `k_len - q_len`). */
  arith(opType: 'Add' | 'Sub' | 'Mul' | 'Div', a: Size, b: Size | number): Size {
    const bs = typeof b === 'number' ? known(b) : b;
    const value = opType === 'Add' ? a.value + bs.value : opType === 'Sub' ? a.value - bs.value : opType === 'Mul' ? a.value * bs.value : Math.floor(a.value / bs.value);
    if (a.name === undefined && bs.name === undefined) return known(value);
    const operand = (s: Size) => s.name ?? this.i(s.value);
    return { value, name: this.op(opType, [operand(a), operand(bs)]) };
  }

  /**
   * A shape built from traced sizes and ints (`x.view(B, T, nh, hs)`): one Constant when every
   * entry is known, else Unsqueeze of each traced size and Constant [1] of each int, concatenated.
   */
  shape(parts: readonly (Size | number)[]): string {
    const sizes = parts.map((p) => (typeof p === 'number' ? known(p) : p));
    if (sizes.every((s) => s.name === undefined)) return this.ints(sizes.map((s) => s.value));
    return this.op('Concat', sizes.map((s) => (s.name === undefined ? this.ints([s.value]) : this.unsqueeze(s.name, [0]))), { axis: attr.int(0) });
  }

  /**
   * `t.expand(sizes)` where a size may be -1: with a constant shape the exporter writes 1 for
   * -1; with a traced shape it keeps -1 and replaces it in the graph:
   * Where(Equal(shape, -1·ones), ones, shape), ones = ConstantOfShape(Shape(shape)).
   */
  expandShape(parts: readonly (Size | number)[]): string {
    const sizes = parts.map((p) => (typeof p === 'number' ? known(p) : p));
    if (sizes.every((s) => s.name === undefined)) return this.ints(sizes.map((s) => (s.value === -1 ? 1 : s.value)));
    const shape = this.shape(sizes);
    const ones = this.op('ConstantOfShape', [this.op('Shape', [shape])], { value: attr.tensor(i64([1], [1])) });
    const negOnes = this.op('Mul', [ones, this.i(-1)]);
    return this.op('Where', [this.op('Equal', [shape, negOnes]), ones, shape]);
  }

  /** `torch.arange(end)` (int64): Range(0, end, 1), or a folded constant. */
  arange(end: Size): string {
    if (end.name === undefined) return this.b.constant(i64([end.value], Array.from({ length: end.value }, (_, k) => k)));
    return this.op('Range', [this.i(0), end.name, this.i(1)]);
  }

  // --- weights -------------------------------------------------------------------------

  private uniform(n: number, std: number): Float32Array {
    const a = std * Math.sqrt(3);
    return Float32Array.from({ length: n }, () => (2 * this.rand() - 1) * a);
  }

  random(dims: readonly number[], std = 0.05, mean = 0): TensorData {
    const n = dims.reduce((p, d) => p * d, 1);
    const data = this.uniform(n, std);
    if (mean) for (let k = 0; k < n; k++) data[k] = data[k]! + mean;
    return f32(dims, data);
  }

  param(name: string, t: TensorData): string {
    return this.b.initializer(name, t, 'param');
  }

  buffer(name: string, t: TensorData): string {
    return this.b.initializer(name, t, 'buffer');
  }

  /** A norm's scale: ones as constructed, or random around one. */
  normWeight(name: string, h: number): string {
    return this.param(name, this.o.freshNorms ? f32([h], new Array<number>(h).fill(1)) : this.random([h], 0.1, 1));
  }

  normBias(name: string, h: number): string {
    return this.param(name, this.o.freshNorms ? f32([h], new Array<number>(h).fill(0)) : this.random([h], 0.02));
  }

  /**
   * nn.Linear(in, out) on a [..., in] activation (aten::linear's symbolic): y = x·Wᵀ + b as
   * MatMul(x, Transpose(W)) then Add(b, ·) (bias first). With constant folding the Transpose of
   * the stored [out, in] weight is folded into a new [in, out] initializer `onnx::MatMul_N`.
   * On a 2-D input with a bias it is Gemm(x, W, b, transB=1) instead (addmm with the transpose
   * fused by the exporter's peephole pass).
   */
  linear(x: string, module: string, inF: number, outF: number, opts: { bias: boolean; rank2?: boolean }): string {
    const w = this.random([outF, inF], 1 / Math.sqrt(inF));
    const bias = opts.bias ? this.param(`${module}.bias`, this.random([outF], 0.02)) : undefined;
    if (opts.rank2 && bias) {
      const wName = this.param(`${module}.weight`, w);
      return this.op('Gemm', [x, wName, bias], { alpha: attr.float(1), beta: attr.float(1), transB: attr.int(1) });
    }
    const mm = this.op('MatMul', [x, this.transposedWeight(`${module}.weight`, w, false)]);
    return bias ? this.op('Add', [bias, mm]) : mm;
  }

  /**
   * The Wᵀ operand of a MatMul: a folded `onnx::MatMul_N` initializer, or Transpose(perm=[1,0])
   * of the stored weight. `shared` means the weight is already an initializer (a tied weight).
   */
  transposedWeight(name: string, w: TensorData, shared: boolean): string {
    if (this.folds) {
      const [out, inF] = w.dims as [number, number];
      const t = new Float32Array(out * inF);
      const src = w.data as Float32Array;
      for (let r = 0; r < out; r++) for (let c = 0; c < inF; c++) t[c * out + r] = src[r * inF + c]!;
      return this.param(this.b.freshName('onnx::MatMul'), f32([inF, out], t));
    }
    const stored = shared ? name : this.param(name, w);
    return this.op('Transpose', [stored], { perm: attr.ints([1, 0]) });
  }

  /**
   * F.layer_norm over the last axis: LayerNormalization at opset ≥ 17; below (or when the
   * model writes its own), the opset-9 decomposition ReduceMean, Sub, Pow(2), ReduceMean,
   * Add(eps), Sqrt, Div, Mul(weight), Add(bias).
   */
  layerNorm(x: string, module: string, h: number, eps: number): string {
    const w = this.normWeight(`${module}.weight`, h);
    const bias = this.normBias(`${module}.bias`, h);
    if (this.o.layerNormOp) return this.op('LayerNormalization', [x, w, bias], { axis: attr.int(-1), epsilon: attr.float(eps) });
    const mean = this.reduceMean(x, [-1]);
    const centred = this.op('Sub', [x, mean]);
    const variance = this.reduceMean(this.op('Pow', [centred, this.f(2)]), [-1]);
    const std = this.op('Sqrt', [this.op('Add', [variance, this.f(eps)])]);
    const normed = this.op('Div', [centred, std]);
    return this.op('Add', [this.op('Mul', [normed, w]), bias]);
  }

  /** F.gelu(x) (approximate='none') at opset < 20: x·0.5·(1 + erf(x/√2)) as Div, Erf, Add, Mul, Mul. */
  geluErf(x: string): string {
    const erf = this.op('Erf', [this.op('Div', [x, this.f(1.4142135381698608)])]);
    const onePlus = this.op('Add', [erf, this.f(1)]);
    return this.op('Mul', [this.op('Mul', [x, onePlus]), this.f(0.5)]);
  }

  /**
   * Hugging Face's NewGELUActivation (GPT-2's "gelu_new"), written out in Python:
   * 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) as Mul(0.5), Pow(3), Mul, Add, Mul, Tanh, Add, Mul.
   */
  geluTanhPow(x: string): string {
    const half = this.op('Mul', [x, this.f(0.5)]);
    const cube = this.op('Pow', [x, this.f(3)]);
    const inner = this.op('Add', [x, this.op('Mul', [cube, this.f(0.044715)])]);
    const t = this.op('Tanh', [this.op('Mul', [inner, this.f(0.7978845608028654)])]);
    return this.op('Mul', [half, this.op('Add', [t, this.f(1)])]);
  }

  /**
   * nn.GELU(approximate='tanh') through the exporter's gelu symbolic: the cube as x·(x·x), then
   * Mul(κ), Add(x), Mul(β), Tanh, Add(1), Mul(x), Mul(0.5).
   */
  geluTanhSymbolic(x: string): string {
    const cube = this.op('Mul', [x, this.op('Mul', [x, x])]);
    const inner = this.op('Mul', [this.f(0.7978845608028654), this.op('Add', [x, this.op('Mul', [this.f(0.044715), cube])])]);
    const onePlus = this.op('Add', [this.f(1), this.op('Tanh', [inner])]);
    return this.op('Mul', [this.f(0.5), this.op('Mul', [x, onePlus])]);
  }

  /** `softmax(scores, dim=-1)`: Softmax(axis=-1), the last axis directly from opset 13. */
  softmax(x: string): string {
    return this.op('Softmax', [x], { axis: attr.int(-1) });
  }

  /**
   * `x.view(B, T, heads, head).transpose(1, 2)` (or `.permute(0, 2, 1, 3)`): Reshape to four
   * axes, then Transpose(perm=[0, 2, 1, 3]).
   */
  splitHeads(x: string, heads: number, headSize: number): string {
    const shape = this.shape([this.batchOf(x), this.seqOf(x), heads, headSize]);
    return this.op('Transpose', [this.op('Reshape', [x, shape], { allowzero: attr.int(0) })], { perm: attr.ints([0, 2, 1, 3]) });
  }

  /** `y.transpose(1, 2).contiguous().view(B, T, C)`: Transpose(perm=[0, 2, 1, 3]), Reshape. */
  mergeHeads(x: string, width: number): string {
    const t = this.op('Transpose', [x], { perm: attr.ints([0, 2, 1, 3]) });
    return this.op('Reshape', [t, this.shape([this.batchOf(t), this.seqOf(t), width])], { allowzero: attr.int(0) });
  }

  /** Renames a value everywhere (the exporter names graph outputs after the user's output names). */
  rename(from: string, to: string): string {
    return this.b.renameValue(from, to);
  }
}

function finish(
  x: Exporter,
  family: Family,
  name: string,
  kvHeads: number,
  outputs: readonly { name: string; dims: (batch: number, seq: number) => number[]; symbolic: readonly Dim[] }[],
): FamilyExport {
  const { b, o } = x;
  for (const out of outputs) b.output(out.name, 'float32', o.dynamicAxes ? out.symbolic : out.dims(o.batch, o.seq));
  b.deduplicateInitializers();
  const params = b.initializers.filter((i) => i.kind === 'param').reduce((n, i) => n + i.tensor.dims.reduce((p, d) => p * d, 1), 0);
  const inputShapes: Record<string, number[]> = {};
  for (const inp of b.inputs) inputShapes[inp.name] = inp.dims.map((d) => (typeof d === 'number' ? d : d === 'batch' ? o.batch : o.seq));
  return {
    name,
    family,
    builder: b,
    config: { ...o, kvHeads },
    inputs: b.inputs,
    inputShapes,
    outputShapes: (batch, seq) => Object.fromEntries(outputs.map((out) => [out.name, out.dims(batch, seq)])),
    params,
    write: (dir) => b.write(dir, `${name}.onnx`, o.externalWeights ? { location: `${name}.onnx.data`, threshold: 1024 } : undefined),
  };
}

function variantName(family: string, o: Resolved, extra: string): string {
  const parts = [family, `o${o.opset}`, o.dynamicAxes ? 'dyn' : 'static', o.constantFolding ? 'fold' : 'nofold', o.layerNormOp ? 'lnop' : 'lndec'];
  if (o.externalWeights) parts.push('ext');
  if (o.freshNorms) parts.push('fresh');
  if (extra) parts.push(extra);
  return parts.join('-');
}

function tokenDims(o: Resolved): Dim[] {
  return o.dynamicAxes ? ['batch', 'sequence'] : [o.batch, o.seq];
}

// ---------------------------------------------------------------------------------------
// BERT (Hugging Face BertModel, eval): token + position + token-type embeddings, post-norm
// encoder layers with separate Q, K, V projections, erf GeLU, a padding mask from an
// attention_mask input, and the pooler (a Gemm on the first token, then Tanh).

export interface BertOptions extends CommonOptions {
  /** An `attention_mask` input turned into an additive mask (default true). */
  readonly attentionMask?: boolean;
  /** A `token_type_ids` input; otherwise the stored all-zero buffer is used (default true). */
  readonly tokenTypes?: boolean;
  /** Fill of the additive mask: torch.finfo(float32).min (transformers ≥ 4.21) or -10000.0 (older). */
  readonly maskFill?: 'finfo' | 'ten-thousand';
  readonly pooler?: boolean;
}

export function bertLike(opts: BertOptions = {}): FamilyExport {
  const o = resolveCommon(opts, (h) => 4 * h);
  const attentionMask = opts.attentionMask ?? true;
  const tokenTypes = opts.tokenTypes ?? true;
  const pooler = opts.pooler ?? true;
  const fill = (opts.maskFill ?? 'finfo') === 'finfo' ? FLOAT32_MIN : -10000;
  const name = opts.name ?? variantName('bert', o, '');
  const x = new Exporter(o);
  const { b } = x;
  const { hidden: H, heads, ffn: F, vocab: V, maxPositions: P } = o;
  const d = H / heads;
  const eps = 1e-12;

  const ids = b.input('input_ids', 'int64', tokenDims(o));
  const mask = attentionMask ? b.input('attention_mask', 'int64', tokenDims(o)) : undefined;
  const types = tokenTypes ? b.input('token_type_ids', 'int64', tokenDims(o)) : undefined;

  // BertModel.get_extended_attention_mask: mask[:, None, None, :], .to(dtype), (1.0 - m) * fill.
  let extended: string | undefined;
  if (mask) {
    const m = x.op('Cast', [x.unsqueeze(x.unsqueeze(mask, [1]), [2])], { to: attr.int(typeCode('float32')) });
    extended = x.op('Mul', [x.op('Sub', [x.f(1), m]), x.f(fill)]);
  }

  // BertEmbeddings.
  let h = b.scoped('embeddings', () => {
    const word = x.param('embeddings.word_embeddings.weight', x.random([V, H], 0.02));
    const posTable = x.param('embeddings.position_embeddings.weight', x.random([P, H], 0.02));
    const typeTable = x.param('embeddings.token_type_embeddings.weight', x.random([2, H], 0.02));
    const seq = x.seqOf(ids);
    const arange = i64([1, P], Array.from({ length: P }, (_, k) => k));
    // position_ids = self.position_ids[:, :seq_length] (a registered buffer), folded to an
    // initializer when the length is a constant.
    const positionIds = seq.name === undefined
      ? x.buffer(b.freshName('onnx::Gather'), i64([1, seq.value], Array.from({ length: seq.value }, (_, k) => k)))
      : x.slice(x.buffer('embeddings.position_ids', arange), 1, known(0), seq);
    let typeIds = types;
    if (!typeIds) {
      // buffered_token_type_ids[:, :seq_length].expand(batch, seq_length)
      const zeros = x.buffer('embeddings.token_type_ids', i64([1, P], new Array<number>(P).fill(0)));
      typeIds = x.op('Expand', [x.slice(zeros, 1, known(0), seq), x.expandShape([x.batchOf(ids), seq])]);
    }
    const inputsEmbeds = b.scoped('word_embeddings', () => x.op('Gather', [word, ids]));
    const typeEmbeds = b.scoped('token_type_embeddings', () => x.op('Gather', [typeTable, typeIds!]));
    let e = x.op('Add', [inputsEmbeds, typeEmbeds]);
    const posEmbeds = b.scoped('position_embeddings', () => x.op('Gather', [posTable, positionIds]));
    e = x.op('Add', [e, posEmbeds]);
    return b.scoped('LayerNorm', () => x.layerNorm(e, 'embeddings.LayerNorm', H, eps));
  });

  for (let l = 0; l < o.layers; l++) {
    const p = `encoder.layer.${l}`;
    h = b.scoped(`encoder/layer.${l}`, () => {
      const input = h;
      const attnOut = b.scoped('attention', () => {
        const ctx = b.scoped('self', () => {
          const mixedQ = b.scoped('query', () => x.linear(input, `${p}.attention.self.query`, H, H, { bias: true }));
          const k = x.splitHeads(b.scoped('key', () => x.linear(input, `${p}.attention.self.key`, H, H, { bias: true })), heads, d);
          const v = x.splitHeads(b.scoped('value', () => x.linear(input, `${p}.attention.self.value`, H, H, { bias: true })), heads, d);
          const q = x.splitHeads(mixedQ, heads, d);
          // torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(head_size) (+ extended mask)
          let scores = x.op('MatMul', [q, x.op('Transpose', [k], { perm: attr.ints([0, 1, 3, 2]) })]);
          scores = x.op('Div', [scores, x.f(Math.sqrt(d))]);
          if (extended) scores = x.op('Add', [scores, extended]);
          return x.mergeHeads(x.op('MatMul', [x.softmax(scores), v]), H);
        });
        return b.scoped('output', () => {
          const dense = b.scoped('dense', () => x.linear(ctx, `${p}.attention.output.dense`, H, H, { bias: true }));
          const res = x.op('Add', [dense, input]);
          return b.scoped('LayerNorm', () => x.layerNorm(res, `${p}.attention.output.LayerNorm`, H, eps));
        });
      });
      const inter = b.scoped('intermediate', () => {
        const up = b.scoped('dense', () => x.linear(attnOut, `${p}.intermediate.dense`, H, F, { bias: true }));
        return b.scoped('intermediate_act_fn', () => x.geluErf(up));
      });
      return b.scoped('output', () => {
        const down = b.scoped('dense', () => x.linear(inter, `${p}.output.dense`, F, H, { bias: true }));
        const res = x.op('Add', [down, attnOut]);
        return b.scoped('LayerNorm', () => x.layerNorm(res, `${p}.output.LayerNorm`, H, eps));
      });
    });
  }
  const last = x.rename(h, 'last_hidden_state');
  const outputs = [{ name: 'last_hidden_state', dims: (bb: number, s: number) => [bb, s, H], symbolic: ['batch', 'sequence', H] as Dim[] }];
  if (pooler) {
    // BertPooler: hidden_states[:, 0] → dense (a Linear on a 2-D input: Gemm) → tanh.
    const pooled = b.scoped('pooler', () => {
      const first = x.op('Gather', [last, x.i(0)], { axis: attr.int(1) });
      const dense = b.scoped('dense', () => x.linear(first, 'pooler.dense', H, H, { bias: true, rank2: true }));
      return b.scoped('activation', () => x.op('Tanh', [dense]));
    });
    x.rename(pooled, 'pooler_output');
    outputs.push({ name: 'pooler_output', dims: (bb: number) => [bb, H], symbolic: ['batch', H] });
  }
  return finish(x, 'bert', name, heads, outputs);
}

// ---------------------------------------------------------------------------------------
// GPT-2. Two module codes:
//  - 'hf': Hugging Face GPT2LMHeadModel. Conv1D layers are addmm on a [-1, in] view (Reshape,
//    Gemm with the [in, out] weight untransposed, Reshape back); the fused c_attn is Split in
//    three; the causal mask slices the bool tril buffer `attn.bias` [1, 1, P, P] by the query
//    and key lengths and selects with Where(mask, w, finfo.min); scores are divided by
//    torch.full([], head_size ** 0.5); position ids are arange(seq).unsqueeze(0); GeLU is
//    "gelu_new" (tanh, written with torch.pow); the LM head is tied to wte.
//  - 'nanogpt': Karpathy's nanoGPT. nn.Linear everywhere (MatMul + Add), c_attn split, scores
//    times 1/√head_size, the mask either the float tril buffer compared with 0 and filled with
//    -inf (masked_fill) or a Trilu over a ones matrix (`torch.ones(T, T).tril()`), nn.GELU
//    (erf, or the tanh symbolic), the LM head tied to wte.

export interface Gpt2Options extends CommonOptions {
  readonly style?: 'hf' | 'nanogpt';
  /** nanogpt: the stored float tril buffer, or Trilu computed in the graph (default 'buffer'). */
  readonly mask?: 'buffer' | 'trilu';
  /** nanogpt: nn.GELU() (erf) or nn.GELU(approximate='tanh'). hf is always tanh. */
  readonly gelu?: 'none' | 'tanh';
  /** hf: an `attention_mask` input added as (1 - m)·finfo.min (default false). */
  readonly attentionMask?: boolean;
}

export function gpt2Like(opts: Gpt2Options = {}): FamilyExport {
  const o = resolveCommon(opts, (h) => 4 * h);
  const style = opts.style ?? 'hf';
  const maskKind = style === 'hf' ? 'buffer' : opts.mask ?? 'buffer';
  const gelu = style === 'hf' ? 'tanh' : opts.gelu ?? 'none';
  const attentionMask = style === 'hf' && (opts.attentionMask ?? false);
  const name = opts.name ?? variantName('gpt2', o, `${style}${style === 'nanogpt' ? `-${maskKind}-${gelu}` : ''}${attentionMask ? '-mask' : ''}`);
  const x = new Exporter(o);
  const { b } = x;
  const { hidden: H, heads, ffn: F, vocab: V, maxPositions: P } = o;
  const d = H / heads;
  const eps = 1e-5;
  const hf = style === 'hf';
  const root = 'transformer.';

  const ids = b.input(hf ? 'input_ids' : 'idx', 'int64', tokenDims(o));
  const padMask = attentionMask ? b.input('attention_mask', 'int64', tokenDims(o)) : undefined;

  // Conv1D.forward: size_out = x.size()[:-1] + (nf,); addmm(bias, x.view(-1, x.size(-1)), weight); view(size_out).
  const conv1d = (xin: string, module: string, nx: number, nf: number): string => {
    const sizeOut = x.shape([x.batchOf(xin), x.seqOf(xin), nf]);
    const w = x.param(`${module}.weight`, x.random([nx, nf], 1 / Math.sqrt(nx)));
    const bias = x.param(`${module}.bias`, x.random([nf], 0.02));
    const flat = x.op('Reshape', [xin, x.shape([-1, x.size(xin, 2, nx, false)])], { allowzero: attr.int(0) });
    const y = x.op('Gemm', [flat, w, bias], { alpha: attr.float(1), beta: attr.float(1) });
    return x.op('Reshape', [y, sizeOut], { allowzero: attr.int(0) });
  };
  const dense = (xin: string, module: string, nx: number, nf: number): string =>
    hf ? conv1d(xin, module, nx, nf) : x.linear(xin, module, nx, nf, { bias: true });

  const wteData = x.random([V, H], 0.02);
  const wte = x.param(`${root}wte.weight`, wteData);
  const wpe = x.param(`${root}wpe.weight`, x.random([P, H], 0.01));

  let h: string;
  let extended: string | undefined;
  if (hf) {
    // input_ids.view(-1, input_shape[-1]); position_ids = arange(0, seq).unsqueeze(0)
    const seq = x.seqOf(ids);
    const flatIds = x.op('Reshape', [ids, x.shape([-1, seq])], { allowzero: attr.int(0) });
    const positions = x.unsqueeze(x.arange(x.seqOf(ids)), [0]);
    if (padMask) {
      // attention_mask.view(batch, -1)[:, None, None, :].to(dtype); (1.0 - m) * finfo.min
      const m2 = x.op('Reshape', [padMask, x.shape([x.batchOf(ids), -1])], { allowzero: attr.int(0) });
      const m = x.op('Cast', [x.unsqueeze(x.unsqueeze(m2, [1]), [2])], { to: attr.int(typeCode('float32')) });
      extended = x.op('Mul', [x.op('Sub', [x.f(1), m]), x.f(FLOAT32_MIN)]);
    }
    h = b.scoped('transformer', () => {
      const tok = b.scoped('wte', () => x.op('Gather', [wte, flatIds]));
      const pos = b.scoped('wpe', () => x.op('Gather', [wpe, positions]));
      return x.op('Add', [tok, pos]);
    });
  } else {
    // b, t = idx.size(); pos = torch.arange(0, t); wte(idx) + wpe(pos)
    const pos = x.arange(x.seqOf(ids));
    h = b.scoped('transformer', () => {
      const tok = b.scoped('wte', () => x.op('Gather', [wte, ids]));
      const pe = b.scoped('wpe', () => x.op('Gather', [wpe, pos]));
      return x.op('Add', [tok, pe]);
    });
  }

  const trilBool = bool([1, 1, P, P], Array.from({ length: P * P }, (_, k) => Math.floor(k / P) >= k % P));
  const trilFloat = f32([1, 1, P, P], Array.from({ length: P * P }, (_, k) => (Math.floor(k / P) >= k % P ? 1 : 0)));

  for (let l = 0; l < o.layers; l++) {
    const p = `${root}h.${l}`;
    h = b.scoped(`transformer/h.${l}`, () => {
      const residual = h;
      const n1 = b.scoped('ln_1', () => x.layerNorm(residual, `${p}.ln_1`, H, eps));
      const attn = b.scoped('attn', () => {
        const qkv = b.scoped('c_attn', () => dense(n1, `${p}.attn.c_attn`, H, 3 * H));
        const [q0, k0, v0] = x.split(qkv, [H, H, H], 2) as [string, string, string];
        const q = x.splitHeads(q0, heads, d);
        const k = x.splitHeads(k0, heads, d);
        const v = x.splitHeads(v0, heads, d);
        let w = x.op('MatMul', [q, x.op('Transpose', [k], { perm: attr.ints([0, 1, 3, 2]) })]);
        if (hf) {
          // attn_weights / torch.full([], value.size(-1) ** 0.5)
          const hs = x.size(v, 3, d, false);
          const scale = hs.name === undefined ? x.f(Math.sqrt(d)) : x.op('Pow', [x.op('Cast', [hs.name], { to: attr.int(typeCode('float32')) }), x.f(0.5)]);
          w = x.op('Div', [w, scale]);
          // causal_mask = self.bias[:, :, key_length - query_length : key_length, :key_length]
          const qLen = x.seqOf(q, 2);
          const kLen = x.seqOf(k, 2);
          let causal: string;
          if (kLen.name === undefined && x.folds) {
            const s = kLen.value;
            causal = x.buffer(b.freshName('onnx::Where'), bool([1, 1, s, s], Array.from({ length: s * s }, (_, k2) => Math.floor(k2 / s) >= k2 % s)));
          } else {
            const buf = x.buffer(`${p}.attn.bias`, trilBool);
            let c = x.slice(buf, 0, known(0), INT64_MAX);
            c = x.slice(c, 1, known(0), INT64_MAX);
            c = x.slice(c, 2, x.arith('Sub', kLen, qLen), kLen);
            causal = x.slice(c, 3, known(0), kLen);
          }
          w = x.op('Where', [causal, w, x.f(FLOAT32_MIN)]);
          if (extended) w = x.op('Add', [w, extended]);
        } else {
          // att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
          w = x.op('Mul', [w, x.f(1 / Math.sqrt(d))]);
          const T = x.seqOf(n1, 1);
          if (maskKind === 'buffer') {
            // att.masked_fill(self.bias[:, :, :T, :T] == 0, float('-inf'))
            let c: string;
            if (T.name === undefined && x.folds) {
              c = x.buffer(b.freshName('onnx::Equal'), f32([1, 1, T.value, T.value], Array.from({ length: T.value * T.value }, (_, k2) => (Math.floor(k2 / T.value) >= k2 % T.value ? 1 : 0))));
            } else {
              c = x.buffer(`${p}.attn.bias`, trilFloat);
              c = x.slice(x.slice(x.slice(x.slice(c, 0, known(0), INT64_MAX), 1, known(0), INT64_MAX), 2, known(0), T), 3, known(0), T);
            }
            w = x.op('Where', [x.op('Equal', [c, x.f(0)]), x.f(-Infinity), w]);
          } else {
            // mask = torch.ones(T, T, dtype=torch.bool).tril(); att.masked_fill(~mask, float('-inf'))
            const ones = T.name === undefined
              ? x.b.constant(bool([T.value, T.value], new Array<number>(T.value * T.value).fill(1)))
              : x.op('ConstantOfShape', [x.shape([T, T])], { value: attr.tensor(bool([1], [1])) });
            const tril = x.op('Trilu', [ones, x.i(0)], { upper: attr.int(0) });
            w = x.op('Where', [x.op('Not', [tril]), x.f(-Infinity), w]);
          }
        }
        const y = x.op('MatMul', [x.softmax(w), v]);
        const merged = x.mergeHeads(y, H);
        return b.scoped('c_proj', () => dense(merged, `${p}.attn.c_proj`, H, H));
      });
      const mid = x.op('Add', [hf ? attn : residual, hf ? residual : attn]);
      const n2 = b.scoped('ln_2', () => x.layerNorm(mid, `${p}.ln_2`, H, eps));
      const mlp = b.scoped('mlp', () => {
        const up = b.scoped('c_fc', () => dense(n2, `${p}.mlp.c_fc`, H, F));
        const act = b.scoped(hf ? 'act' : 'gelu', () => (hf ? x.geluTanhPow(up) : gelu === 'tanh' ? x.geluTanhSymbolic(up) : x.geluErf(up)));
        return b.scoped('c_proj', () => dense(act, `${p}.mlp.c_proj`, F, H));
      });
      return x.op('Add', [mid, mlp]);
    });
  }
  h = b.scoped('transformer/ln_f', () => x.layerNorm(h, `${root}ln_f`, H, eps));
  if (hf) {
    // hidden_states.view(input_shape + (hidden_states.size(-1),))
    h = b.scoped('transformer', () => x.op('Reshape', [h, x.shape([x.batchOf(ids), x.seqOf(ids), x.size(h, 2, H, false)])], { allowzero: attr.int(0) }));
  }
  // lm_head: nn.Linear(h, vocab, bias=False) whose weight is wte.weight (tied).
  const logits = b.scoped('lm_head', () => x.op('MatMul', [h, x.transposedWeight(`${root}wte.weight`, wteData, true)]));
  x.rename(logits, 'logits');
  return finish(x, 'gpt2', name, heads, [{ name: 'logits', dims: (bb, s) => [bb, s, V], symbolic: ['batch', 'sequence', V] }]);
}

// ---------------------------------------------------------------------------------------
// Llama (Hugging Face LlamaForCausalLM, eval): RMSNorm, q/k/v/o projections without bias,
// rotary embeddings with rotate_half, grouped-query attention through repeat_kv, a SwiGLU MLP
// and an untied LM head, with one of three rotary-table sources and two causal-mask builders.

export interface LlamaOptions extends CommonOptions {
  /** Key/value heads (grouped-query attention when fewer than heads). Default: heads / 2. */
  readonly kvHeads?: number;
  /**
   * Where cos/sin come from:
   *  - 'cache': the cos_cached/sin_cached buffers [P, head] (transformers 4.31-4.37), sliced
   *    [:seq] and gathered by position_ids; with static shapes and folding, folded initializers.
   *  - 'matmul': computed in the graph (transformers ≥ 4.38): inv_freq[None, :, None]
   *    expanded, MatMul with position_ids[:, None, :], Transpose, Concat(freqs, freqs), Cos/Sin.
   *  - 'einsum': computed in the graph as GPT-NeoX-style ports do: t = arange(seq),
   *    Einsum('i,j->ij', t, inv_freq), Concat, Cos/Sin, gathered by position_ids.
   */
  readonly rope?: 'cache' | 'matmul' | 'einsum';
  /**
   * The causal mask:
   *  - 'range': transformers ≤ 4.35 _make_causal_mask: full(finfo.min), arange, Less against
   *    (arange + 1).view(T, 1), Where(…, 0, mask), [None, None].expand(B, 1, T, T); plus
   *    _expand_mask of the attention_mask (1 - m, masked_fill with finfo.min) added to it.
   *  - 'triu': transformers 4.38-4.40 _update_causal_mask without a padding mask:
   *    full(finfo.min), Trilu(upper, k=1), times arange(T) > cache_position.reshape(-1, 1),
   *    [None, None].expand(B, 1, -1, -1).
   */
  readonly mask?: 'range' | 'triu';
  /** An `attention_mask` input (only with mask 'range'; default true there). */
  readonly attentionMask?: boolean;
  /** torch.rsqrt as the exporter writes it (Div(1, Sqrt)) or as Reciprocal(Sqrt) (default 'div'). */
  readonly rsqrt?: 'div' | 'reciprocal';
  /**
   * How the attention views its heads: `view(B, T, heads, head_dim)` and `reshape(B, T, hidden)`
   * ('explicit', transformers ≤ 4.47), or `view(*input_shape, -1, head_dim)` and
   * `reshape(*input_shape, -1)` ('infer', transformers ≥ 4.48), where the head count is a -1.
   */
  readonly headsView?: 'explicit' | 'infer';
}

export function llamaLike(opts: LlamaOptions = {}): FamilyExport {
  const o = resolveCommon(opts, (h) => Math.round((8 * h) / 3 / 16) * 16);
  const heads = o.heads;
  const kv = opts.kvHeads ?? Math.max(1, heads / 2);
  if (heads % kv !== 0) throw new Error(`${heads} heads are not a multiple of ${kv} kv heads`);
  const rope = opts.rope ?? 'cache';
  const maskKind = opts.mask ?? 'range';
  const attentionMask = maskKind === 'range' && (opts.attentionMask ?? true);
  const rsqrt = opts.rsqrt ?? 'div';
  const inferHeads = (opts.headsView ?? 'explicit') === 'infer';
  const name = opts.name ?? variantName('llama', o, `kv${kv}-${rope}-${maskKind}${attentionMask ? '-mask' : ''}${rsqrt === 'reciprocal' ? '-recip' : ''}${inferHeads ? '-view' : ''}`);
  const x = new Exporter(o);
  const { b } = x;
  const { hidden: H, ffn: F, vocab: V, maxPositions: P } = o;
  const d = H / heads;
  const nRep = heads / kv;
  const eps = 1e-6;
  const theta = 10000;
  const f32Code = typeCode('float32');

  const ids = b.input('input_ids', 'int64', tokenDims(o));
  const padMask = attentionMask ? b.input('attention_mask', 'int64', tokenDims(o)) : undefined;

  // LlamaRMSNorm: x.to(float32); variance = x.pow(2).mean(-1, keepdim=True);
  // x * torch.rsqrt(variance + eps); weight * x.to(input_dtype).
  const rmsNorm = (xin: string, module: string): string => {
    const w = x.normWeight(`${module}.weight`, H);
    const xf = x.op('Cast', [xin], { to: attr.int(f32Code) });
    const variance = x.reduceMean(x.op('Pow', [xf, x.f(2)]), [-1]);
    const root = x.op('Sqrt', [x.op('Add', [variance, x.f(eps)])]);
    const inv = rsqrt === 'div' ? x.op('Div', [x.b.constant(f32([1], [1])), root]) : x.op('Reciprocal', [root]);
    const normed = x.op('Cast', [x.op('Mul', [xf, inv])], { to: attr.int(f32Code) });
    return x.op('Mul', [w, normed]);
  };

  const invFreq = Array.from({ length: d / 2 }, (_, k) => 1 / theta ** ((2 * k) / d));
  const table = (fn: (v: number) => number, rows: number): TensorData => {
    const vals: number[] = [];
    for (let t = 0; t < rows; t++) for (let j = 0; j < d; j++) vals.push(fn(t * invFreq[j % (d / 2)]!));
    return f32([rows, d], vals);
  };

  const embed = x.param('model.embed_tokens.weight', x.random([V, H], 0.02));
  let h = b.scoped('model/embed_tokens', () => x.op('Gather', [embed, ids]));

  // cache_position = arange(seq); position_ids = cache_position.unsqueeze(0)
  const seq0 = x.seqOf(ids);
  const cachePosition = x.arange(seq0);
  const positionIds = x.unsqueeze(cachePosition, [0]);

  // The 4-D additive mask [B, 1, T, T].
  const causalMask = b.scoped('model', () => {
    const T = x.seqOf(h, 1);
    const B = x.batchOf(h);
    if (maskKind === 'range') {
      // _make_causal_mask
      const full = T.name === undefined
        ? x.b.constant(f32([T.value, T.value], new Array<number>(T.value * T.value).fill(FLOAT32_MIN)))
        : x.op('ConstantOfShape', [x.shape([T, T])], { value: attr.tensor(f32([1], [FLOAT32_MIN])) });
      const cond = x.arange(x.size(full, 1, T.value, true));
      const next = x.op('Reshape', [x.op('Add', [cond, x.i(1)]), x.shape([x.size(full, 1, T.value, true), 1])], { allowzero: attr.int(0) });
      const filled = x.op('Where', [x.op('Less', [cond, next]), x.f(0), full]);
      let causal = x.op('Expand', [x.unsqueeze(x.unsqueeze(filled, [0]), [1]), x.expandShape([B, 1, T, T])]);
      if (padMask) {
        // _expand_mask: mask[:, None, None, :].expand(B, 1, T, S).to(dtype); 1 - m; masked_fill(bool, min)
        const S = x.size(padMask, 1, o.seq, true);
        const expanded = x.op('Cast', [x.op('Expand', [x.unsqueeze(x.unsqueeze(padMask, [1]), [2]), x.expandShape([x.batchOf(padMask), 1, T, S])])], { to: attr.int(f32Code) });
        const inverted = x.op('Sub', [x.f(1), expanded]);
        const pad = x.op('Where', [x.op('Cast', [inverted], { to: attr.int(typeCode('bool')) }), x.f(FLOAT32_MIN), inverted]);
        causal = x.op('Add', [pad, causal]);
      }
      return causal;
    }
    // _update_causal_mask (no padding mask)
    const full = T.name === undefined
      ? x.b.constant(f32([T.value, T.value], new Array<number>(T.value * T.value).fill(FLOAT32_MIN)))
      : x.op('ConstantOfShape', [x.shape([T, T])], { value: attr.tensor(f32([1], [FLOAT32_MIN])) });
    let causal = x.op('Trilu', [full, x.i(1)], { upper: attr.int(1) });
    const after = x.op('Greater', [x.arange(T), x.op('Reshape', [cachePosition, x.ints([-1, 1])], { allowzero: attr.int(0) })]);
    causal = x.op('Mul', [causal, x.op('Cast', [after], { to: attr.int(f32Code) })]);
    return x.op('Expand', [x.unsqueeze(x.unsqueeze(causal, [0]), [1]), x.expandShape([B, 1, -1, -1])]);
  });

  // cos and sin, [B or 1, 1, T, head] after unsqueeze(1), computed once for the model.
  const [cos, sin] = b.scoped('model/rotary_emb', () => {
    const T = x.seqOf(h, 1);
    if (rope === 'cache') {
      if (T.name === undefined && x.folds) {
        // cos_cached[:seq][position_ids].unsqueeze(1), folded to initializers [1, 1, T, head].
        const fold = (fn: (v: number) => number) => {
          const t = table(fn, T.value);
          return x.buffer(b.freshName('onnx::Mul'), f32([1, 1, T.value, d], t.data as Float32Array));
        };
        return [fold(Math.cos), fold(Math.sin)];
      }
      const cached = (nm: string, fn: (v: number) => number) => {
        const buf = x.buffer(`model.layers.0.self_attn.rotary_emb.${nm}`, table(fn, P));
        const sliced = x.slice(buf, 0, known(0), T);
        return x.unsqueeze(x.op('Gather', [sliced, positionIds]), [1]);
      };
      return [cached('cos_cached', Math.cos), cached('sin_cached', Math.sin)];
    }
    const inv = x.buffer('model.rotary_emb.inv_freq', f32([d / 2], invFreq));
    let emb: string;
    if (rope === 'matmul') {
      // inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
      const invExp = x.op('Expand', [x.op('Cast', [x.unsqueeze(x.unsqueeze(inv, [0]), [2])], { to: attr.int(f32Code) }), x.expandShape([x.size(positionIds, 0, 1, false), -1, 1])]);
      const posExp = x.op('Cast', [x.unsqueeze(positionIds, [1])], { to: attr.int(f32Code) });
      const freqs = x.op('Transpose', [x.op('MatMul', [invExp, posExp])], { perm: attr.ints([0, 2, 1]) });
      emb = x.op('Concat', [freqs, freqs], { axis: attr.int(-1) });
      const cs = (fn: string) => x.unsqueeze(x.op('Cast', [x.op(fn, [emb])], { to: attr.int(f32Code) }), [1]);
      return [cs('Cos'), cs('Sin')];
    }
    // t = arange(seq).type_as(inv_freq); freqs = einsum('i,j->ij', t, inv_freq)
    const t = x.op('Cast', [x.arange(T)], { to: attr.int(f32Code) });
    const freqs = x.op('Einsum', [t, inv], { equation: attr.string('i,j->ij') });
    emb = x.op('Concat', [freqs, freqs], { axis: attr.int(-1) });
    const cs = (fn: string) => x.unsqueeze(x.op('Gather', [x.op(fn, [emb]), positionIds]), [1]);
    return [cs('Cos'), cs('Sin')];
  });

  // apply_rotary_pos_emb: (x * cos) + (rotate_half(x) * sin), with rotate_half =
  // cat((-x[..., half:], x[..., :half]), -1).
  const applyRope = (t: string): string => {
    const half = x.arith('Div', x.size(t, 3, d, false), 2);
    const x1 = x.slice(t, 3, known(0), half);
    const x2 = x.slice(t, 3, half, INT64_MAX);
    const rotated = x.op('Concat', [x.op('Neg', [x2]), x1], { axis: attr.int(-1) });
    return x.op('Add', [x.op('Mul', [t, cos]), x.op('Mul', [rotated, sin])]);
  };

  // repeat_kv: x[:, :, None, :, :].expand(B, kv, n_rep, T, head).reshape(B, kv * n_rep, T, head)
  const repeatKv = (t: string): string => {
    if (nRep === 1) return t;
    const B = x.batchOf(t);
    const kvh = x.size(t, 1, kv, false);
    const T = x.seqOf(t, 2);
    const hd = x.size(t, 3, d, false);
    const e = x.op('Expand', [x.unsqueeze(t, [2]), x.expandShape([B, kvh, nRep, T, hd])]);
    return x.op('Reshape', [e, x.shape([B, x.arith('Mul', kvh, nRep), T, hd])], { allowzero: attr.int(0) });
  };

  for (let l = 0; l < o.layers; l++) {
    const p = `model.layers.${l}`;
    h = b.scoped(`model/layers.${l}`, () => {
      const residual = h;
      const n1 = b.scoped('input_layernorm', () => rmsNorm(residual, `${p}.input_layernorm`));
      const attn = b.scoped('self_attn', () => {
        const B = x.batchOf(n1);
        const T = x.seqOf(n1);
        const proj = (nm: string, out: number) => b.scoped(nm, () => x.linear(n1, `${p}.self_attn.${nm}`, H, out, { bias: false }));
        const heads4 = (t: string, nh: number) => x.op('Transpose', [x.op('Reshape', [t, x.shape([B, T, inferHeads ? -1 : nh, d])], { allowzero: attr.int(0) })], { perm: attr.ints([0, 2, 1, 3]) });
        let q = heads4(proj('q_proj', H), heads);
        let k = heads4(proj('k_proj', kv * d), kv);
        let v = heads4(proj('v_proj', kv * d), kv);
        q = applyRope(q);
        k = applyRope(k);
        k = repeatKv(k);
        v = repeatKv(v);
        // matmul(q, k.transpose(2, 3)) / math.sqrt(head_dim) + causal_mask[:, :, :, :k_len]
        let w = x.op('Div', [x.op('MatMul', [q, x.op('Transpose', [k], { perm: attr.ints([0, 1, 3, 2]) })]), x.f(Math.sqrt(d))]);
        w = x.op('Add', [w, x.slice(causalMask, 3, known(0), x.seqOf(k, 2))]);
        // softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
        const probs = x.op('Cast', [x.op('Cast', [x.softmax(w)], { to: attr.int(f32Code) })], { to: attr.int(f32Code) });
        const y = x.op('MatMul', [probs, v]);
        const merged = x.op('Reshape', [x.op('Transpose', [y], { perm: attr.ints([0, 2, 1, 3]) }), x.shape([B, T, inferHeads ? -1 : H])], { allowzero: attr.int(0) });
        return b.scoped('o_proj', () => x.linear(merged, `${p}.self_attn.o_proj`, H, H, { bias: false }));
      });
      const mid = x.op('Add', [residual, attn]);
      const n2 = b.scoped('post_attention_layernorm', () => rmsNorm(mid, `${p}.post_attention_layernorm`));
      const mlp = b.scoped('mlp', () => {
        // down_proj(act_fn(gate_proj(x)) * up_proj(x)); SiLU is x·sigmoid(x) below opset 20.
        const gate = b.scoped('gate_proj', () => x.linear(n2, `${p}.mlp.gate_proj`, H, F, { bias: false }));
        const act = b.scoped('act_fn', () => x.op('Mul', [gate, x.op('Sigmoid', [gate])]));
        const up = b.scoped('up_proj', () => x.linear(n2, `${p}.mlp.up_proj`, H, F, { bias: false }));
        return b.scoped('down_proj', () => x.linear(x.op('Mul', [act, up]), `${p}.mlp.down_proj`, F, H, { bias: false }));
      });
      return x.op('Add', [mid, mlp]);
    });
  }
  h = b.scoped('model/norm', () => rmsNorm(h, 'model.norm'));
  // logits = lm_head(hidden_states).float()
  const logits = b.scoped('lm_head', () => x.linear(h, 'lm_head', H, V, { bias: false }));
  x.rename(x.op('Cast', [logits], { to: attr.int(f32Code) }), 'logits');
  return finish(x, 'llama', name, kv, [{ name: 'logits', dims: (bb, s) => [bb, s, V], symbolic: ['batch', 'sequence', V] }]);
}

// ---------------------------------------------------------------------------------------
// Inputs for running a generated model.

/**
 * Seeded inputs for a generated model at the given batch and sequence: token ids below the
 * vocabulary, token types 0/1, and an attention mask of ones whose second row is padded on the
 * right (position 0 always attends, so no softmax row is empty).
 */
export function sampleInputs(m: FamilyExport, batch: number, seq: number, seed = 7): Record<string, TensorData> {
  const rand = seededRandom(seed);
  const padded = paddedFrom(seq);
  const out: Record<string, TensorData> = {};
  for (const inp of m.inputs) {
    const dtype: ElemType = inp.dtype;
    if (dtype !== 'int64') throw new Error(`unexpected input type ${dtype}`);
    const vals: number[] = [];
    for (let r = 0; r < batch; r++) {
      for (let c = 0; c < seq; c++) {
        if (inp.name === 'attention_mask') vals.push(r === 1 && c >= padded ? 0 : 1);
        else if (inp.name === 'token_type_ids') vals.push(c >= seq / 2 ? 1 : 0);
        else vals.push(Math.floor(rand() * m.config.vocab));
      }
    }
    out[inp.name] = i64([batch, seq], vals);
  }
  return out;
}

/** The first padded position of row 1 in sampleInputs' attention mask (a quarter of the row is padding). */
export function paddedFrom(seq: number): number {
  return seq - Math.floor(seq / 4);
}

/** Total bytes of the initializers a model stores (for tests on external data). */
export function initializerBytes(m: FamilyExport): number {
  return m.builder.initializers.reduce((n, i) => n + tensorBytes(i.tensor), 0);
}

// ---------------------------------------------------------------------------------------
// The catalogue the frontend tests run: each entry a distinct combination of exporter
// settings and module code.

export interface FamilyVariant {
  readonly id: string;
  readonly family: Family;
  /** The exporter constructs this variant exercises. */
  readonly covers: string;
  make(): FamilyExport;
}

const variant = (id: string, family: Family, covers: string, make: (name: string) => FamilyExport): FamilyVariant => ({ id, family, covers, make: () => make(id) });

export const FAMILY_VARIANTS: readonly FamilyVariant[] = [
  variant('bert-o17-static-fold', 'bert',
    'LayerNormalization op; folded Reshape shapes and position ids; MatMul on folded onnx::MatMul weights + Add(bias); erf GeLU; finfo.min padding mask; pooler Gemm(transB=1) + Tanh',
    (name) => bertLike({ name, opset: 17 })),
  variant('bert-o14-dyn-nofold', 'bert',
    'opset 14; dynamic axes; no folding: Transpose of [out, in] weights, Shape→Gather→Unsqueeze→Concat→Reshape head split, Slice of the position_ids buffer; decomposed LayerNorm (ReduceMean axes attribute); -10000 padding mask',
    (name) => bertLike({ name, opset: 14, dynamicAxes: true, constantFolding: false, maskFill: 'ten-thousand' })),
  variant('bert-o18-dyn-fold-ext-fresh', 'bert',
    'opset 18 ReduceMean with axes input (decomposed LayerNorm); external data; fresh norms de-duplicated into Identity nodes; token types from the zero buffer (Slice + Expand with -1 handling)',
    (name) => bertLike({ name, opset: 18, dynamicAxes: true, layerNormOp: false, externalWeights: true, freshNorms: true, tokenTypes: false })),
  variant('bert-o16-static-nofold', 'bert',
    'opset 16 static shapes without folding (Shape chains over static sizes); no attention mask; no pooler',
    (name) => bertLike({ name, opset: 16, constantFolding: false, attentionMask: false, pooler: false })),
  variant('gpt2-hf-o17-static-fold', 'gpt2',
    'HF GPT-2: Conv1D as Reshape→Gemm([in, out])→Reshape; fused c_attn Split; folded slice of the bool tril buffer + Where(finfo.min); gelu_new (Pow/Tanh); tied LM head folded to a transposed copy',
    (name) => gpt2Like({ name, style: 'hf', opset: 17 })),
  variant('gpt2-hf-o15-dyn-nofold-mask', 'gpt2',
    'HF GPT-2 dynamic, no folding: Range position ids, bias[:, :, k-q:k, :k] as four Slices with traced bounds, torch.full([], head ** 0.5) as Cast/Pow, attention_mask view + (1 - m)·finfo.min, tied head as Transpose(wte); decomposed LayerNorm; per-layer tril buffers de-duplicated',
    (name) => gpt2Like({ name, style: 'hf', opset: 15, dynamicAxes: true, constantFolding: false, attentionMask: true })),
  variant('gpt2-hf-o18-dyn-nofold-ext', 'gpt2',
    'HF GPT-2 at opset 18 with external data: the bool tril buffers (1 KiB each) stored externally and sliced with traced bounds; LayerNormalization at 18',
    (name) => gpt2Like({ name, style: 'hf', opset: 18, dynamicAxes: true, constantFolding: false, externalWeights: true })),
  variant('gpt2-nano-o17-dyn-fold-trilu-tanh-ext', 'gpt2',
    'nanoGPT: nn.Linear MatMul + Add; Trilu over ConstantOfShape(bool) + Not + Where(-inf); nn.GELU(tanh) symbolic (x·x·x); external data; fresh norms',
    (name) => gpt2Like({ name, style: 'nanogpt', opset: 17, dynamicAxes: true, mask: 'trilu', gelu: 'tanh', externalWeights: true, freshNorms: true })),
  variant('gpt2-nano-o14-static-nofold-buffer', 'gpt2',
    'nanoGPT opset 14, no folding: float tril buffer sliced [:T, :T], Equal(0) + Where(-inf) (masked_fill); erf GeLU; decomposed LayerNorm',
    (name) => gpt2Like({ name, style: 'nanogpt', opset: 14, constantFolding: false, mask: 'buffer', gelu: 'none' })),
  variant('gpt2-nano-o16-static-fold-buffer', 'gpt2',
    'nanoGPT opset 16 static with folding: the sliced tril buffer folded to an initializer; Range folded to a constant',
    (name) => gpt2Like({ name, style: 'nanogpt', opset: 16, mask: 'buffer', gelu: 'none' })),
  variant('llama-o17-static-fold-gqa', 'llama',
    'HF Llama GQA (4 heads, 2 kv): RMSNorm Cast/Pow/ReduceMean/Add/Sqrt/Div(1)/Mul/Cast/Mul; folded cos/sin initializers; rotate_half Slice/Slice/Neg/Concat; repeat_kv Unsqueeze/Expand/Reshape; _make_causal_mask (folded) + _expand_mask padding; SiLU as Sigmoid·Mul; softmax Cast pair',
    (name) => llamaLike({ name, opset: 17 })),
  variant('llama-o14-dyn-nofold-matmul-triu-mha', 'llama',
    'HF Llama ≥ 4.38 dynamic, no folding, MHA: rotary inv_freq expand + MatMul with position ids + Transpose + Concat + Cos/Sin; _update_causal_mask Trilu(upper, k=1) × (arange > cache_position) + expand(-1) Where pattern; no padding input',
    (name) => llamaLike({ name, opset: 14, dynamicAxes: true, constantFolding: false, rope: 'matmul', mask: 'triu', kvHeads: 4 })),
  variant('llama-o18-dyn-fold-einsum-ext-recip', 'llama',
    'opset 18 ReduceMean axes input; Range/Einsum/Concat/Cos/Sin rotary table gathered by position ids; 8 heads over 2 kv heads; rsqrt as Reciprocal; external data; fresh norms de-duplicated',
    (name) => llamaLike({ name, opset: 18, heads: 8, kvHeads: 2, dynamicAxes: true, rope: 'einsum', externalWeights: true, rsqrt: 'reciprocal', freshNorms: true })),
  variant('llama-o16-static-nofold-cache', 'llama',
    'opset 16 static without folding: cos_cached/sin_cached buffers sliced [:T] and gathered by position ids; _make_causal_mask with ConstantOfShape/Range/Less/Where and expand; padding mask',
    (name) => llamaLike({ name, opset: 16, constantFolding: false, rope: 'cache' })),
  variant('llama-o15-dyn-fold-matmul', 'llama',
    'opset 15 dynamic with folding: traced batch/sequence sizes only, rotary MatMul path, range mask with padding; view(*input_shape, -1, head_dim) with the head count inferred (-1)',
    (name) => llamaLike({ name, opset: 15, dynamicAxes: true, rope: 'matmul', headsView: 'infer' })),
];

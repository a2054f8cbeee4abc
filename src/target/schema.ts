// Schemas for hardware descriptions: the three bundled data kinds (a die, a package, a memory
// system) and a user's hardware file. Hardware is data, so every field is checked here before
// any pass sees it. Objects are strict (an unknown field is an error, with the closest known
// name suggested), and every leaf carries its expectation as its error message, so a problem
// reads as one sentence: `package.link.lanes must be a positive whole number, got -3`.
// Field names carry their units (clock_mhz, alpha_ns, ...); src/target/load.ts turns the
// validated data into the SI-unit `Target`.

import { z } from 'zod';
import { editDistance } from '../util/suggest.js';

// -- leaves: each one's error message says what the field must be -------------------------

const MIB = 2 ** 20;

function positiveInt() {
  const error = 'must be a positive whole number';
  return z.number({ error }).int({ error }).positive({ error });
}

function positiveNumber() {
  const error = 'must be a positive number';
  return z.number({ error }).positive({ error });
}

function nonNegativeNumber() {
  const error = 'must be a number of zero or more';
  return z.number({ error }).nonnegative({ error });
}

function atLeastOne() {
  const error = 'must be a number of at least 1';
  return z.number({ error }).min(1, { error });
}

/** A buffer size in MiB; it must come to a whole number of bytes. */
function mebibytes() {
  const error = 'must be a positive number of MiB (a whole number of bytes)';
  return z
    .number({ error })
    .positive({ error })
    .refine((v) => Number.isInteger(v * MIB), { error });
}

function label() {
  const error = 'must be a non-empty name';
  return z.string({ error }).min(1, { error });
}

/** A kind: a lowercase name, which may also name a bundled file (`standard`, `ddr5-6400`). */
function kindName() {
  const error = "must be a lowercase name of letters, digits, '-' or '_'";
  return z.string({ error }).regex(/^[a-z][a-z0-9_-]*$/, { error });
}

function flag() {
  return z.boolean({ error: 'must be true or false' });
}

/** A map of fields; unknown fields are reported separately (GY4004), with suggestions. */
function fields<S extends z.ZodRawShape>(shape: S) {
  return z.strictObject(shape, { error: 'must be a map of fields' });
}

// -- the die ------------------------------------------------------------------------------

export const PRECISIONS = ['fp32', 'bf16', 'fp16'] as const;
export const ROUTER_PORTS = ['E', 'S', 'W', 'N'] as const;

const routerPorts = z
  .array(z.enum(ROUTER_PORTS, { error: `must be one of ${ROUTER_PORTS.join(', ')}` }), {
    error: `must be a list of distinct directions from ${ROUTER_PORTS.join(', ')}`,
  })
  .min(1, { error: `must be a list of distinct directions from ${ROUTER_PORTS.join(', ')}` })
  .refine((ports) => new Set(ports).size === ports.length, {
    error: `must be a list of distinct directions from ${ROUTER_PORTS.join(', ')}`,
  });

/** targets/dies/*.yaml, and `die:` in a hardware file. */
export const dieSchema = fields({
  name: label(),
  /** The accelerator kind whose cost formulas apply (src/target/accelerators.ts). */
  model: kindName().optional(),
  precision: z.enum(PRECISIONS, { error: `must be one of ${PRECISIONS.join(', ')}` }),
  macs: positiveInt(),
  pes: positiveInt(),
  clock_mhz: positiveNumber(),
  activation_buffer_mib: mebibytes(),
  weight_buffer_mib: mebibytes(),
  vector_lanes: positiveInt(),
  router: fields({
    ports: routerPorts,
    bypass: flag(),
  }),
  energy: fields({
    mac_pj: nonNegativeNumber(),
    sram_read_pj_per_byte: nonNegativeNumber(),
    sram_write_pj_per_byte: nonNegativeNumber(),
    vector_op_pj: nonNegativeNumber(),
    static_w: nonNegativeNumber(),
  }),
  /** The IR ops the vector unit runs (absent: every op). */
  vector_ops: z
    .array(label(), { error: 'must be a list of IR op names' })
    .optional(),
});

// -- the package --------------------------------------------------------------------------

/** One die-to-die link (each direction has this bandwidth). */
export const linkSchema = fields({
  lanes: positiveInt(),
  gtps_per_lane: positiveNumber(),
  alpha_ns: nonNegativeNumber(),
  bypass_latency_factor: atLeastOne(),
  energy_pj_per_bit: nonNegativeNumber(),
});

/** targets/packages/*.yaml: the grid is optional there (a preset name supplies it). */
export const packageFileSchema = fields({
  kind: kindName(),
  rows: positiveInt().optional(),
  cols: positiveInt().optional(),
  link: linkSchema,
});

/** A package in a complete hardware description: the grid is required. */
export const packageSchema = fields({
  kind: kindName(),
  rows: positiveInt(),
  cols: positiveInt(),
  link: linkSchema,
});

// -- the memory system --------------------------------------------------------------------

/** targets/memory/*.yaml, and `memory:` in a hardware file. */
export const memorySchema = fields({
  kind: kindName(),
  data_rate_mtps: positiveNumber(),
  channel_width_bits: positiveInt(),
  energy_pj_per_bit: nonNegativeNumber(),
  /** Channels per die position along the package edge: channels = this × 2·(rows + cols). */
  channels_per_edge_die: positiveInt().optional(),
  /** An explicit channel total; takes precedence over channels_per_edge_die. */
  channels: positiveInt().optional(),
  capacity_gib_per_channel: positiveNumber().optional(),
});

// -- a user's hardware file ---------------------------------------------------------------

export const BALANCES = ['throughput', 'even'] as const;

const reference = (what: string) =>
  z.union([z.string(), z.record(z.string(), z.unknown())], {
    error: `must be a map of ${what} fields or the name of a bundled ${what}`,
  });

/**
 * The top level of a hardware file, before references are resolved: either a complete
 * description (die, package, memory) or `base: PRESET` plus partial overrides. The maps
 * inside are checked with the schemas above once merged (see load.ts).
 */
export const hardwareFileSchema = fields({
  name: label().optional(),
  base: z.string({ error: 'must be a preset name such as hecaton-4x4-standard' }).optional(),
  die: reference('die').optional(),
  package: z.record(z.string(), z.unknown(), { error: 'must be a map of package fields' }).optional(),
  memory: reference('memory').optional(),
  die_types: z.record(z.string(), z.unknown(), { error: 'must be a map from a die type name to a bundled die name or a map of die fields' }).optional(),
  layout: z.array(z.unknown(), { error: 'must be a list with one entry per row of dies' }).optional(),
  /** How a heterogeneous package shares work: by die throughput (default) or evenly. */
  balance: z.enum(BALANCES, { error: `must be one of ${BALANCES.join(', ')}` }).optional(),
});

/** A complete hardware description after `base:` and references are resolved. */
export const hardwareSchema = fields({
  name: label(),
  die: dieSchema,
  package: packageSchema,
  memory: memorySchema,
});

export type DieData = z.infer<typeof dieSchema>;
export type LinkData = z.infer<typeof linkSchema>;
export type PackageFileData = z.infer<typeof packageFileSchema>;
export type PackageData = z.infer<typeof packageSchema>;
export type MemoryData = z.infer<typeof memorySchema>;
export type HardwareFileData = z.infer<typeof hardwareFileSchema>;
export type HardwareData = z.infer<typeof hardwareSchema>;

// -- turning schema failures into one-line problems ---------------------------------------

export type FieldPath = readonly (string | number)[];

/** Where a problem points in the file: the value itself, a map key, or the enclosing map. */
export type ProblemSite = 'value' | 'key' | 'parent';

/** One validation failure, not yet located in a file. */
export interface Problem {
  readonly code: 'GY4001' | 'GY4004';
  readonly path: FieldPath;
  readonly site: ProblemSite;
  readonly detail: string;
}

/**
 * `['package', 'link', 'lanes']` → `package.link.lanes`; indices print as `[2]`, and a key
 * that is not a plain name prints quoted (`die["<<"]`), so a message stays on one line.
 */
export function formatPath(path: FieldPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (!/^[A-Za-z0-9_-]+$/.test(part)) out += `[${JSON.stringify(part)}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out === '' ? 'the hardware description' : out;
}

/** A value as it appears after `got`: short, one line. */
export function showValue(value: unknown): string {
  if (typeof value === 'string') {
    const text = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value).slice(1, -1);
    return `'${text}'`;
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) return showList(value);
  if (ArrayBuffer.isView(value)) return 'binary data';
  if (typeof value === 'object') return 'a map';
  return String(value);
}

/** A short list of plain values inline (`[E, S, E]`), anything else as `a list`. */
function showList(items: readonly unknown[]): string {
  const plain = items.every((x) => typeof x === 'number' || typeof x === 'boolean' || (typeof x === 'string' && /^[\w.+-]{1,20}$/.test(x)));
  return plain && items.length <= 8 ? `[${items.map(String).join(', ')}]` : 'a list';
}

/** Every failure of `input` against `schema` (from a failed safeParse) as a Problem. */
export function problemsOf(schema: z.ZodType, input: unknown, issues: readonly z.core.$ZodIssue[]): Problem[] {
  return issues.flatMap((issue) => toProblems(schema, input, issue));
}

function toProblems(schema: z.ZodType, input: unknown, issue: z.core.$ZodIssue): Problem[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    const known = knownFields(schema, path);
    return issue.keys.map((key) => ({
      code: 'GY4004' as const,
      path: [...path, key],
      site: 'key' as const,
      detail: `unknown field ${formatPath([...path, key])}${suggestion(key, known)}`,
    }));
  }
  if (isMissing(input, path)) {
    return [{ code: 'GY4001', path, site: 'parent', detail: `missing required field ${formatPath(path)}` }];
  }
  const value = valueAt(input, path);
  return [{ code: 'GY4001', path, site: 'value', detail: `${formatPath(path)} ${issue.message}, got ${showValue(value)}` }];
}

/** The value at `path` inside plain data, or undefined. */
export function valueAt(data: unknown, path: FieldPath): unknown {
  let here = data;
  for (const part of path) {
    if (here === null || typeof here !== 'object') return undefined;
    here = Object.prototype.hasOwnProperty.call(here, part) ? (here as Record<string | number, unknown>)[part] : undefined;
  }
  return here;
}

function isMissing(data: unknown, path: FieldPath): boolean {
  if (path.length === 0) return false;
  const parent = valueAt(data, path.slice(0, -1));
  return isFieldMap(parent) && valueAt(data, path) === undefined;
}

function isFieldMap(x: unknown): boolean {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/** The field names a map at `path` of `schema` accepts. */
function knownFields(schema: z.ZodType, path: FieldPath): string[] {
  let here: z.ZodType | undefined = schema;
  for (const part of path) {
    here = unwrap(here);
    if (here instanceof z.ZodObject && typeof part === 'string') here = (here.shape as Record<string, z.ZodType>)[part];
    else if (here instanceof z.ZodArray) here = here.element as z.ZodType;
    else return [];
    if (!here) return [];
  }
  here = unwrap(here);
  return here instanceof z.ZodObject ? Object.keys(here.shape) : [];
}

function unwrap(schema: z.ZodType): z.ZodType {
  let here = schema;
  while (here instanceof z.ZodOptional || here instanceof z.ZodDefault) here = here.unwrap() as z.ZodType;
  return here;
}

/** ` (did you mean weight_buffer_mib?)`, or the list of known fields when none is close. */
export function suggestion(word: string, known: readonly string[]): string {
  if (known.length === 0) return '';
  const lower = word.toLowerCase();
  const scored = known.map((k) => ({ k, d: editDistance(lower, k.toLowerCase()) }));
  scored.sort((a, b) => a.d - b.d || a.k.localeCompare(b.k));
  const best = scored[0]!;
  const close = best.d <= Math.max(2, Math.floor(word.length / 3)) || best.k.startsWith(word) || word.startsWith(best.k);
  return close ? ` (did you mean ${best.k}?)` : ` (known fields: ${known.join(', ')})`;
}

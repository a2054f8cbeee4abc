// Loading a hardware target from a preset name (`hecaton-RxC-standard`, `hecaton-RxC-advanced`)
// or from a user's file (YAML, or JSON through the same parser). A file is either a complete
// description {name?, die, package, memory} or `base: PRESET` with partial overrides deep-merged
// over the preset. Bundled data (targets/dies, targets/packages, targets/memory) goes through
// the same schemas. Every problem is one GygesError pointing at the offending YAML node
// (`file:line:col: error GY4001: ...`), found with yaml's Document API and a LineCounter.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { LineCounter, isMap, isScalar, parseDocument, type Document, type Node } from 'yaml';
import { z } from 'zod';
import { assert, error, errorAt, type GygesError, type SourceLoc } from '../diagnostics/diagnostic.js';
import { bundled } from '../util/paths.js';
import {
  dieSchema,
  type DieData,
  formatPath,
  hardwareFileSchema,
  hardwareSchema,
  memorySchema,
  packageFileSchema,
  problemsOf,
  valueAt,
  type FieldPath,
  type HardwareData,
  type HardwareFileData,
  type Problem,
  type ProblemSite,
} from './schema.js';
import { withDie, type DieSpec, type Target } from './target.js';
import { DEFAULT_ACCELERATOR } from './accelerators.js';

type Data = Record<string, unknown>;

const MIB = 2 ** 20;
const GIB = 2 ** 30;
const PRESET_EXAMPLE = 'a preset name like hecaton-4x4-standard or hecaton-8x8-advanced';
const FILE_EXTENSIONS = ['.yaml', '.yml', '.json'];

// -- entry point --------------------------------------------------------------------------

/**
 * A target from a preset name or a hardware file; bad input throws a GygesError. `dies` are
 * die types from accelerator files (plugin.ts): a hardware file's layout may name them, and
 * without a layout a single one replaces the package's die.
 */
export function loadTarget(spec: string, dies: readonly DieSpec[] = []): Target {
  const preset = parsePresetName(spec);
  if (preset) return withAccelerators(buildTarget(presetData(preset, undefined), spec), dies);
  const kind = pathKind(spec);
  if (kind === 'file') return loadHardwareFile(spec, dies);
  if (kind === 'folder') throw error('GY9002', `cannot read hardware file '${spec}': it is a folder`);
  if (looksLikePath(spec)) throw error('GY9002', `cannot read hardware file '${spec}': no such file`);
  throw error('GY4002', `unknown hardware '${spec}': not a file, and not ${PRESET_EXAMPLE}`);
}

function pathKind(path: string): 'file' | 'folder' | 'none' {
  try {
    const st = statSync(path);
    return st.isFile() ? 'file' : st.isDirectory() ? 'folder' : 'none';
  } catch {
    return 'none';
  }
}

function looksLikePath(spec: string): boolean {
  return /[\\/]/.test(spec) || FILE_EXTENSIONS.includes(extname(spec).toLowerCase());
}

// -- presets ------------------------------------------------------------------------------

interface PresetName {
  readonly text: string;
  /** A bundled die (targets/dies). */
  readonly die: string;
  readonly rows: number;
  readonly cols: number;
  readonly kind: 'standard' | 'advanced';
}

/**
 * `DIE-RxC-standard` / `DIE-RxC-advanced` where DIE is a bundled die (`hecaton-4x4-standard`,
 * `systolic-bf16-8x8-advanced`), or undefined for anything else.
 */
export function parsePresetName(text: string): PresetName | undefined {
  const m = /^([a-z][a-z0-9_.-]*?)-([0-9]+)x([0-9]+)-(standard|advanced)$/.exec(text);
  if (!m || (m[1] !== 'hecaton' && !bundledNames('dies').includes(m[1]!))) return undefined;
  return { text, die: m[1]!, rows: Number(m[2]), cols: Number(m[3]), kind: m[4] as PresetName['kind'] };
}

/** The complete raw description a preset stands for; `at` locates a `base:` that names it. */
function presetData(preset: PresetName, at: SourceLoc | undefined): Data {
  const grid = /-([0-9]+x[0-9]+)-/.exec(preset.text)?.[1] ?? `${preset.rows}x${preset.cols}`;
  if (preset.rows < 1 || preset.cols < 1) {
    throw errorAt(at, 'GY4001', `preset '${preset.text}' must have at least one row and one column, got ${grid}`);
  }
  if (!Number.isSafeInteger(preset.rows * preset.cols)) {
    throw errorAt(at, 'GY4001', `preset '${preset.text}' has too many dies for a package, got ${grid}`);
  }
  const die = bundledData('dies', preset.die);
  const pkg = bundledData('packages', preset.kind);
  const memory = bundledData('memory', 'ddr5-6400');
  assert(die && pkg && memory, `bundled data for preset '${preset.text}' is missing`);
  return {
    name: preset.text,
    die,
    package: { kind: preset.kind, rows: preset.rows, cols: preset.cols, link: pkg.link },
    memory,
  };
}

// -- bundled data files -------------------------------------------------------------------

const BUNDLED_SCHEMAS = { dies: dieSchema, packages: packageFileSchema, memory: memorySchema } as const;
type BundledKind = keyof typeof BUNDLED_SCHEMAS;
const BUNDLED_WHAT: Record<BundledKind, string> = { dies: 'die', packages: 'package', memory: 'memory' };

/** Parsed and validated bundled files, by path (they never change while we run). */
const bundledCache = new Map<string, Data>();

/** A bundled data file's validated contents, or undefined if there is no such file. */
function bundledData(kind: BundledKind, name: string): Data | undefined {
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(name) || name.includes('..')) return undefined;
  const file = bundled('targets', kind, `${name}.yaml`);
  const cached = bundledCache.get(file);
  if (cached) return cached;
  if (pathKind(file) !== 'file') return undefined;
  const src = readYaml(file);
  const data = validate(src, BUNDLED_SCHEMAS[kind], requireMap(src, `a ${BUNDLED_WHAT[kind]} file`)) as Data;
  bundledCache.set(file, deepFreeze(data));
  return data;
}

/** The names of the bundled files of one kind, for messages. */
function bundledNames(kind: BundledKind): string[] {
  try {
    return readdirSync(bundled('targets', kind))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => f.slice(0, -'.yaml'.length))
      .sort();
  } catch {
    return [];
  }
}

// -- reading YAML with positions ----------------------------------------------------------

interface YamlSource {
  readonly file: string;
  readonly doc: Document.Parsed;
  readonly lines: LineCounter;
  readonly data: unknown;
}

function readYaml(file: string): YamlSource {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw error('GY9002', `cannot read hardware file '${file}': ${readFailure(e)}`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const pos = lines.linePos(first.pos[0]);
    throw errorAt({ file, ...pos }, 'GY4003', `YAML syntax error: ${oneLine(first.message)}`);
  }
  let data: unknown;
  try {
    data = plainData(doc.toJS({ maxAliasCount: 100, mapAsMap: true }));
  } catch (e) {
    throw errorAt({ file, line: 1, col: 1 }, 'GY4003', `YAML error: ${oneLine(e instanceof Error ? e.message : String(e))}`);
  }
  return { file, doc, lines, data };
}

/**
 * YAML maps (read as `Map`s) to plain objects with own properties only, so that a key such as
 * `__proto__` stays an ordinary (and, to the strict schemas, unknown) field.
 */
function plainData(x: unknown): unknown {
  if (x instanceof Map) return Object.fromEntries([...x].map(([k, v]) => [String(k), plainData(v)]));
  if (Array.isArray(x)) return x.map(plainData);
  return x;
}

function readFailure(e: unknown): string {
  const code = (e as { code?: unknown }).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'it is a folder';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return oneLine(e instanceof Error ? e.message : String(e));
}

function oneLine(text: string): string {
  return (text.split('\n')[0] ?? '').trim();
}

function requireMap(src: YamlSource, what: string): Data {
  if (!isPlainMap(src.data)) {
    throw errorAt(rootLoc(src), 'GY4003', `${what} must be a YAML map of fields, got ${describeTop(src.data)}`);
  }
  return src.data;
}

function describeTop(data: unknown): string {
  if (data === null || data === undefined) return 'an empty document';
  if (Array.isArray(data)) return 'a list';
  return `a single value (${typeof data})`;
}

function isPlainMap(x: unknown): x is Data {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

// -- locating problems in the YAML --------------------------------------------------------

function posOf(src: YamlSource, node: Node | null | undefined): SourceLoc | undefined {
  const offset = node?.range?.[0];
  return offset === undefined ? undefined : { file: src.file, ...src.lines.linePos(offset) };
}

function rootLoc(src: YamlSource): SourceLoc {
  return posOf(src, src.doc.contents) ?? { file: src.file, line: 1, col: 1 };
}

function nodeAt(src: YamlSource, path: FieldPath): Node | undefined {
  if (path.length === 0) return src.doc.contents ?? undefined;
  const node: unknown = src.doc.getIn(path, true);
  return node && typeof node === 'object' && 'range' in node ? (node as Node) : undefined;
}

/** The node at `path`, or its deepest ancestor present in this file (base values are not). */
function valueLoc(src: YamlSource, path: FieldPath): SourceLoc {
  for (let n = path.length; n > 0; n--) {
    const loc = posOf(src, nodeAt(src, path.slice(0, n)));
    if (loc) return loc;
  }
  return rootLoc(src);
}

/** The key of the last field of `path` (`lanes:` in `link: {lanes: ...}`). */
function keyLoc(src: YamlSource, path: FieldPath): SourceLoc {
  if (path.length === 0) return rootLoc(src);
  const parent = nodeAt(src, path.slice(0, -1));
  const last = path[path.length - 1];
  if (isMap(parent)) {
    const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(last));
    const loc = posOf(src, pair && isScalar(pair.key) ? pair.key : undefined);
    if (loc) return loc;
  }
  return valueLoc(src, path);
}

function locate(src: YamlSource, path: FieldPath, site: ProblemSite): SourceLoc {
  switch (site) {
    case 'value':
      return valueLoc(src, path);
    case 'key':
      return keyLoc(src, path);
    case 'parent':
      // A missing field points at the map that lacks it: that map's own key, or the top.
      return path.length <= 1 ? rootLoc(src) : keyLoc(src, path.slice(0, -1));
  }
}

/** The problem that comes first in the file, as a located GygesError. */
function firstProblem(src: YamlSource, problems: readonly Problem[]): GygesError {
  assert(problems.length > 0, 'no problem to report');
  const located = problems.map((p) => ({ p, loc: locate(src, p.path, p.site) }));
  let best = located[0]!;
  for (const c of located) {
    if (c.loc.line < best.loc.line || (c.loc.line === best.loc.line && c.loc.col < best.loc.col)) best = c;
  }
  return errorAt(best.loc, best.p.code, best.p.detail);
}

function validate<S extends z.ZodType>(src: YamlSource, schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw firstProblem(src, problemsOf(schema, input, result.error.issues));
}

function fail(src: YamlSource, path: FieldPath, detail: string): GygesError {
  return errorAt(valueLoc(src, path), 'GY4001', detail);
}

// -- user hardware files ------------------------------------------------------------------

/** A die description file (an accelerator file's data form, plugin.ts). */
export function loadDieFile(file: string): DieSpec {
  const src = readYaml(file);
  return dieSpecOf(validate(src, dieSchema, requireMap(src, 'a die description')));
}

function loadHardwareFile(file: string, extra: readonly DieSpec[]): Target {
  if (!FILE_EXTENSIONS.includes(extname(file).toLowerCase())) {
    throw error('GY4003', `hardware file '${file}' must end in .yaml, .yml or .json`);
  }
  const src = readYaml(file);
  const hw = hardwareData(src);
  const top = src.data as HardwareFileData;
  if (top.layout === undefined) {
    if (top.die_types !== undefined) throw fail(src, ['die_types'], 'die_types needs a layout: a list with one entry per row of dies, naming their types');
    return withAccelerators(buildTarget(hw, file), extra);
  }
  return buildTarget(hw, file, { ...placeDies(src, hw, extra), balance: top.balance ?? 'throughput' });
}

/** The die types a hardware file's `die_types` and `layout` give, and each die's type. */
function placeDies(src: YamlSource, hw: HardwareData, extra: readonly DieSpec[]): { types: DieSpec[]; layout: number[] } {
  const top = src.data as HardwareFileData;
  const named = new Map<string, DieSpec>();
  for (const [name, given] of Object.entries(top.die_types ?? {})) {
    const path = ['die_types', name];
    if (typeof given === 'string') {
      named.set(name, extra.find((d) => d.name === given) ?? dieSpecOf(bundledOrFail(src, 'dies', given, path) as DieData));
      continue;
    }
    // A map of fields over the file's die, named after its key unless it says otherwise.
    const merged = mergeOver({ ...hw.die, name }, given);
    const checked = validate(src, z.strictObject({ die_types: z.record(z.string(), dieSchema) }), { die_types: { [name]: merged } });
    named.set(name, dieSpecOf(checked.die_types[name]!));
  }
  const lookup = (name: string, path: FieldPath): DieSpec => {
    const hit = named.get(name) ?? extra.find((d) => d.name === name);
    if (hit) return hit;
    const data = name === hw.die.name ? hw.die : (bundledData('dies', name) as DieData | undefined);
    if (data) {
      // One spec per name, so every die of the type shares it.
      const spec = dieSpecOf(data);
      named.set(name, spec);
      return spec;
    }
    const known = [...named.keys(), ...extra.map((d) => d.name), hw.die.name, ...bundledNames('dies')];
    throw fail(src, path, `unknown die type '${name}' (known: ${[...new Set(known)].join(', ')})`);
  };
  const { rows, cols } = hw.package;
  const layoutRows = top.layout!;
  if (layoutRows.length !== rows) throw fail(src, ['layout'], `layout must have one entry per row of dies (${rows}), got ${layoutRows.length}`);
  const types: DieSpec[] = [];
  const layout: number[] = [];
  layoutRows.forEach((row, i) => {
    const names = typeof row === 'string' ? row.trim().split(/\s+/) : Array.isArray(row) && row.every((x) => typeof x === 'string') ? (row as string[]) : null;
    if (names === null) throw fail(src, ['layout', i], `layout[${i}] must be a die type name, names separated by spaces, or a list of names`);
    const perDie = names.length === 1 ? Array<string>(cols).fill(names[0]!) : names;
    if (perDie.length !== cols) throw fail(src, ['layout', i], `layout[${i}] must name one die type for the whole row or one per die (${cols}), got ${names.length}`);
    perDie.forEach((name, j) => {
      const die = lookup(name, typeof row === 'string' ? ['layout', i] : ['layout', i, j]);
      let k = types.indexOf(die);
      if (k < 0) k = types.push(die) - 1;
      layout.push(k);
    });
  });
  const first = types[0]!;
  for (const d of types) {
    if (d.precision !== first.precision) throw fail(src, ['layout'], `die types '${first.name}' and '${d.name}' differ in precision (${first.precision}, ${d.precision}); one package computes at one precision`);
    if (d.router.bypass !== first.router.bypass || d.router.ports.join() !== first.router.ports.join()) {
      throw fail(src, ['layout'], `die types '${first.name}' and '${d.name}' have different routers; the rings of a package need one router design`);
    }
  }
  return { types, layout };
}

/** Extra die types without a layout: one replaces the die; more need a layout to place them. */
function withAccelerators(t: Target, extra: readonly DieSpec[]): Target {
  if (extra.length === 0) return t;
  if (extra.length > 1) {
    throw error('GY4001', `${extra.length} accelerators given (${extra.map((d) => d.name).join(', ')}), but hardware '${t.source}' has no layout placing them; give one, or write a hardware file with die_types and a layout`);
  }
  return deepFreeze(withDie(t, extra[0]!));
}

/** The complete, validated description a hardware file stands for. */
function hardwareData(src: YamlSource): HardwareData {
  const raw = requireMap(src, 'a hardware file');
  validate(src, hardwareFileSchema, raw);
  // Continue from the raw data, not zod's copy: the copy would turn a `__proto__` key inside
  // a map into a prototype, hiding it from the strict checks below.
  const top = raw as HardwareFileData;
  const start: Data = top.base === undefined ? {} : baseData(src, top.base);
  const merged = {
    name: top.name ?? defaultName(src.file),
    // die_types and layout are placed by placeDies once the rest is valid.
    die: resolveDie(src, start.die, top.die),
    package: resolvePackage(src, start.package, top.package),
    memory: resolveMemory(src, start.memory, top.memory),
  };
  const hw = validate(src, hardwareSchema, merged);
  checkConsistency(src, hw);
  return hw;
}

function defaultName(file: string): string {
  return basename(file, extname(file));
}

function baseData(src: YamlSource, base: string): Data {
  const preset = parsePresetName(base);
  if (!preset) {
    throw errorAt(valueLoc(src, ['base']), 'GY4002', `unknown base preset '${base}': expected ${PRESET_EXAMPLE}`);
  }
  return presetData(preset, valueLoc(src, ['base']));
}

/** `die:` is a bundled die's name, a map merged over the base's die, or a complete map. */
function resolveDie(src: YamlSource, base: unknown, given: unknown): unknown {
  if (typeof given === 'string') return bundledOrFail(src, 'dies', given, ['die']);
  return mergeOver(base, given);
}

/** `memory:` likewise; a map whose `kind` names a bundled memory starts from that file. */
function resolveMemory(src: YamlSource, base: unknown, given: unknown): unknown {
  if (typeof given === 'string') return bundledOrFail(src, 'memory', given, ['memory']);
  return mergeOver(startForKind('memory', base, given), given);
}

/**
 * `package:` is a map. When its `kind` names a bundled package (standard, advanced), the link
 * starts from that file; any other kind needs the link in full (or a base to inherit it from).
 */
function resolvePackage(src: YamlSource, base: unknown, given: unknown): unknown {
  if (!isPlainMap(given)) return mergeOver(base, given);
  const kind = given.kind;
  const start = startForKind('packages', base, given);
  if (typeof kind === 'string' && /^[a-z][a-z0-9_-]*$/.test(kind) && valueAt(start, ['link']) === undefined && given.link === undefined) {
    throw fail(
      src,
      ['package', 'kind'],
      `package.kind '${kind}' is not a bundled package (${bundledNames('packages').join(', ')}), so package.link must be given in full`,
    );
  }
  return mergeOver(start, given);
}

/** The defaults a map starts from: the bundled file its `kind` names, if it changes kind. */
function startForKind(kind: BundledKind, base: unknown, given: unknown): unknown {
  const name = isPlainMap(given) ? given.kind : undefined;
  if (typeof name !== 'string' || (isPlainMap(base) && base.kind === name)) return base;
  const file = bundledData(kind, name);
  if (!file) return base;
  if (kind !== 'packages') return file;
  // A package file has no grid: keep the base's rows and cols, take the new link.
  return { ...(isPlainMap(base) ? base : {}), kind: name, link: file.link };
}

function bundledOrFail(src: YamlSource, kind: BundledKind, name: string, path: FieldPath): Data {
  const data = bundledData(kind, name);
  if (data) return data;
  const what = BUNDLED_WHAT[kind];
  throw fail(src, path, `${formatPath(path)} '${name}' is not a bundled ${what} (known: ${bundledNames(kind).join(', ')})`);
}

/** Deep merge: maps merge key by key, anything else in `over` replaces what is under it. */
function mergeOver(under: unknown, over: unknown): unknown {
  if (over === undefined) return under;
  if (!isPlainMap(under) || !isPlainMap(over)) return over;
  const keys = [...Object.keys(under), ...Object.keys(over).filter((k) => !Object.hasOwn(under, k))];
  // Object.fromEntries defines own properties, so a key like `__proto__` stays a plain field.
  return Object.fromEntries(keys.map((k) => [k, mergeOver(under[k], over[k])]));
}

/** Checks across fields, once each field is valid on its own. */
function checkConsistency(src: YamlSource, hw: HardwareData): void {
  const { macs, pes } = hw.die;
  if (macs % pes !== 0) {
    const path = nodeAt(src, ['die', 'pes']) ? ['die', 'pes'] : ['die', 'macs'];
    throw fail(src, path, `die.macs must be a multiple of die.pes, got ${macs} MACs in ${pes} PEs`);
  }
  const { rows, cols } = hw.package;
  if (!Number.isSafeInteger(rows * cols)) {
    const path = nodeAt(src, ['package', 'cols']) ? ['package', 'cols'] : ['package', 'rows'];
    throw fail(src, path, `package has too many dies, got ${rows}x${cols}`);
  }
}

// -- normalising to SI units --------------------------------------------------------------

/** A validated die description in SI units; `extra` adds a plugin's file and cost functions. */
export function dieSpecOf(die: DieData, extra: Pick<DieSpec, 'file' | 'custom'> = {}): DieSpec {
  return {
    name: die.name,
    model: die.model ?? DEFAULT_ACCELERATOR,
    precision: die.precision,
    macs: die.macs,
    pes: die.pes,
    clockHz: die.clock_mhz * 1e6,
    activationBufferBytes: die.activation_buffer_mib * MIB,
    weightBufferBytes: die.weight_buffer_mib * MIB,
    vectorLanes: die.vector_lanes,
    router: { ports: [...die.router.ports], bypass: die.router.bypass },
    energy: {
      macPj: die.energy.mac_pj,
      sramReadPjPerByte: die.energy.sram_read_pj_per_byte,
      sramWritePjPerByte: die.energy.sram_write_pj_per_byte,
      vectorOpPj: die.energy.vector_op_pj,
      staticW: die.energy.static_w,
    },
    ...(die.vector_ops === undefined ? {} : { vectorOps: [...die.vector_ops] }),
    ...extra,
  };
}

function buildTarget(raw: unknown, source: string, placed?: { types: DieSpec[]; layout: number[]; balance: Target['balance'] }): Target {
  const hw = hardwareSchema.parse(raw);
  const { die, package: pkg, memory: mem } = hw;
  const channels = mem.channels ?? (mem.channels_per_edge_die ?? 1) * 2 * (pkg.rows + pkg.cols);
  const channelBandwidth = (mem.data_rate_mtps * 1e6 * mem.channel_width_bits) / 8;
  const types = placed?.types ?? [dieSpecOf(die)];
  const target: Target = {
    name: hw.name,
    source,
    die: types[0]!,
    dieTypes: types,
    layout: placed?.layout ?? Array<number>(pkg.rows * pkg.cols).fill(0),
    balance: placed?.balance ?? 'throughput',
    package: {
      kind: pkg.kind,
      rows: pkg.rows,
      cols: pkg.cols,
      dies: pkg.rows * pkg.cols,
      link: {
        lanes: pkg.link.lanes,
        gtpsPerLane: pkg.link.gtps_per_lane,
        bandwidthBytesPerS: (pkg.link.lanes * pkg.link.gtps_per_lane * 1e9) / 8,
        alphaS: pkg.link.alpha_ns / 1e9,
        bypassLatencyFactor: pkg.link.bypass_latency_factor,
        energyPjPerBit: pkg.link.energy_pj_per_bit,
      },
    },
    memory: {
      kind: mem.kind,
      dataRateMtps: mem.data_rate_mtps,
      channelWidthBits: mem.channel_width_bits,
      channels,
      channelBandwidthBytesPerS: channelBandwidth,
      totalBandwidthBytesPerS: channels * channelBandwidth,
      energyPjPerBit: mem.energy_pj_per_bit,
      ...(mem.capacity_gib_per_channel === undefined ? {} : { capacityBytes: channels * mem.capacity_gib_per_channel * GIB }),
    },
  };
  return deepFreeze(target);
}

function deepFreeze<T>(x: T): T {
  if (x !== null && typeof x === 'object' && !Object.isFrozen(x)) {
    for (const v of Object.values(x)) deepFreeze(v);
    Object.freeze(x);
  }
  return x;
}

// Event-driven execution of every die's program (program.ts) on the engines of engines.ts.
//
// Unrolling: each die's program is first unrolled into instances (one per instruction per loop
// iteration, in program order), materialising every die's program — fine for the small grids
// this first version targets. A dep resolves to the current instance of the instruction named
// in the innermost enclosing scope that has it; a loop named as a dep stands for an end marker
// that waits for every instance of that loop; the body of each iteration waits for a start
// marker carrying the loop's own deps; `carried` ids resolve in the previous iteration of the
// same body. The last iteration's work (time, bytes) is scaled by last_size / size.
//
// Scheduling: each die has three engines (compute, dram, nop), each serving one instance at a
// time. Compute and dram take the earliest instance in program order whose deps are done, so a
// DRAM read of the next mini-batch overlaps this one's compute. The nop engine serves its
// collectives strictly in program order (every die runs the same order, so no two dies can
// wait on each other), which keeps the ring rendezvous free of deadlock.
//
// Collectives: the dies of a group meet by (cid, group, loop iteration path). Every algorithm is
// run as a ring: `steps` sends of link_bytes / steps from each die to its successor in the
// group's ring order, a send of step s > 0 waiting for the step s−1 message from the
// predecessor (ring algorithms exactly; other algorithms as a ring of the same step count and
// link bytes). Messages may arrive before the receiver reaches the instruction (buffered). A
// die's collective ends when it has received every step and its own sends have arrived.
//
// Result: latency = when the last die finishes. busy_s: per engine class, the largest busy time
// over dies. breakdown_s: on the critical die (the one finishing last), the time during which
// that engine class alone was busy; time with several engines busy, or none, is in neither.

import { InternalError, assert, assertNever } from '../../diagnostics/diagnostic.js';
import type { Die } from '../../passes/sharding.js';
import type { ProgramSet } from '../../passes/schedule/index.js';
import type { Target } from '../../target/target.js';
import type { CollectiveInstr, Instruction, Range } from '../program.js';
import { ENGINE_CLASSES, NopFabric, dramSeconds, engineOf, gemmSeconds, planeOf, vectorSeconds, type EngineClass, type Plane } from './engines.js';
import { EventQueue } from './events.js';

export type EngineTimes = Record<EngineClass, number>;

export interface DieTiming {
  readonly die: Range;
  readonly finish_s: number;
  readonly busy_s: EngineTimes;
}

export interface ExecutionResult {
  readonly latency_s: number;
  /** On the critical die: time during which only that engine class was busy. */
  readonly breakdown_s: EngineTimes;
  /** Per engine class, the largest busy time of any die. */
  readonly busy_s: EngineTimes;
  readonly critical_die: Range;
  readonly dies: readonly DieTiming[];
  /** Instances executed (instructions × iterations, plus loop markers). */
  readonly instances: number;
  readonly events: number;
}

/** Most instances the executor materialises. */
const MAX_INSTANCES = 5e6;

export function executePrograms(set: ProgramSet, target: Target): ExecutionResult {
  const dies = set.dies();
  const instances: Instance[] = [];
  dies.forEach((die, d) => new Unroller(d, die, target, instances).run(set.programFor(die).instructions));
  const ex = new Executor(instances, dies, target);
  ex.run();
  return ex.result();
}

// ---------------------------------------------------------------------------------------------
// Unrolling

interface CollectiveWork {
  readonly key: string;
  readonly position: number;
  readonly size: number;
  readonly steps: number;
  readonly stepBytes: number;
  readonly plane: Plane;
  readonly self: Range;
  readonly next: Range;
}

interface Instance {
  /** Index of the die in `set.dies()`. */
  readonly die: number;
  /** null for a loop marker (no engine, no time). */
  readonly engine: EngineClass | null;
  readonly seconds: number;
  readonly collective: CollectiveWork | null;
  readonly deps: readonly number[];
}

interface Scope {
  readonly ids: Map<number, number>;
  readonly parent: Scope | null;
  /** The same body's map in the previous iteration, for `carried`. */
  readonly previous: Map<number, number> | null;
  /** Start marker of the loop iteration, which every instance of the body waits for. */
  readonly gate: number | null;
  /** Loop iteration indices down to this scope, to match collective instances. */
  readonly path: string;
  /** Share of a full iteration's work (last_size / size on a last iteration, nested). */
  readonly scale: number;
}

class Unroller {
  constructor(
    private readonly die: number,
    private readonly where: Die,
    private readonly target: Target,
    private readonly out: Instance[],
  ) {}

  run(list: readonly Instruction[]): void {
    this.list(list, { ids: new Map(), parent: null, previous: null, gate: null, path: '', scale: 1 });
  }

  private list(list: readonly Instruction[], scope: Scope): void {
    for (const ins of list) {
      const deps = this.deps(ins, scope);
      if (ins.kind === 'loop') scope.ids.set(ins.id, this.loop(ins, deps, scope));
      else scope.ids.set(ins.id, this.push(this.leaf(ins, deps, scope)));
    }
  }

  private deps(ins: Instruction, scope: Scope): number[] {
    const deps = ins.deps.map((id) => lookup(scope, id, ins.id));
    if (scope.previous !== null) {
      for (const id of ins.carried) {
        const prev = scope.previous.get(id);
        assert(prev !== undefined, `instruction ${ins.id} carries a dependency on ${id}, not in its body`);
        deps.push(prev);
      }
    }
    if (scope.gate !== null) deps.push(scope.gate);
    return deps;
  }

  /** Unroll a loop; returns its end marker. */
  private loop(ins: Extract<Instruction, { kind: 'loop' }>, deps: number[], scope: Scope): number {
    const start = this.push(marker(this.die, deps));
    let previous: Map<number, number> | null = null;
    for (let it = 0; it < ins.count; it++) {
      const share = it === ins.count - 1 ? ins.lastSize / ins.size : 1;
      const body: Scope = { ids: new Map(), parent: scope, previous, gate: start, path: `${scope.path}/${ins.id}.${it}`, scale: scope.scale * share };
      this.list(ins.body, body);
      previous = body.ids;
    }
    const all = Array.from({ length: this.out.length - start - 1 }, (_, k) => start + 1 + k);
    return this.push(marker(this.die, all.length > 0 ? all : [start]));
  }

  private leaf(ins: Exclude<Instruction, { kind: 'loop' }>, deps: number[], scope: Scope): Instance {
    const base = { die: this.die, engine: engineOf(ins), deps, collective: null };
    const die = this.target.die;
    switch (ins.kind) {
      case 'gemm':
        return { ...base, seconds: gemmSeconds(ins, die) * scope.scale };
      case 'vector':
        return { ...base, seconds: vectorSeconds(ins.elements, die) * scope.scale };
      case 'dram.read':
      case 'dram.write':
        return { ...base, seconds: dramSeconds(ins.bytes, this.target) * scope.scale };
      case 'collective':
        return { ...base, seconds: 0, collective: this.collective(ins, scope) };
      default:
        return assertNever(ins);
    }
  }

  private collective(ins: CollectiveInstr, scope: Scope): CollectiveWork {
    const self = ins.group[ins.position];
    assert(self !== undefined && self[0] === this.where.i && self[1] === this.where.j, `collective ${ins.cid} on die [${this.where.i}, ${this.where.j}] names another die at its position`);
    const group = ins.group.map((g) => `${g[0]},${g[1]}`).join(';');
    return {
      key: `${ins.cid}|${group}|${scope.path}`,
      position: ins.position,
      size: ins.group.length,
      steps: ins.steps,
      stepBytes: ins.steps > 0 ? (ins.linkBytes / ins.steps) * scope.scale : 0,
      plane: planeOf(ins.axis),
      self,
      next: ins.group[(ins.position + 1) % ins.group.length]!,
    };
  }

  private push(x: Instance): number {
    assert(this.out.length < MAX_INSTANCES, `the executor materialises at most ${MAX_INSTANCES} instruction instances`);
    this.out.push(x);
    return this.out.length - 1;
  }
}

function marker(die: number, deps: readonly number[]): Instance {
  return { die, engine: null, seconds: 0, collective: null, deps };
}

function lookup(scope: Scope, id: number, from: number): number {
  for (let s: Scope | null = scope; s !== null; s = s.parent) {
    const x = s.ids.get(id);
    if (x !== undefined) return x;
  }
  throw new InternalError(`instruction ${from} depends on ${id}, not yet seen in scope`);
}

// ---------------------------------------------------------------------------------------------
// Running

interface EngineState {
  busy: boolean;
  busyS: number;
  /** Ready instances (compute, dram): a min-heap of instance indices = program order. */
  readonly ready: number[];
  /** The nop engine's collectives in program order, and the next to serve. */
  readonly order: number[];
  next: number;
  readonly intervals: [number, number][];
}

interface Rendezvous {
  readonly started: (number | null)[];
  readonly recv: number[];
  readonly sent: number[];
  readonly delivered: number[];
  readonly finished: boolean[];
}

class Executor {
  private readonly engine = new EventQueue();
  private readonly fabric: NopFabric;
  private readonly pending: number[];
  private readonly dependents: number[][];
  private readonly isReady: boolean[];
  private readonly state: Record<EngineClass, EngineState>[];
  private readonly finish: number[];
  private readonly meetings = new Map<string, Rendezvous>();
  private completed = 0;

  constructor(
    private readonly instances: readonly Instance[],
    private readonly dies: readonly Die[],
    target: Target,
  ) {
    this.fabric = new NopFabric(target, this.engine);
    this.pending = instances.map((x) => x.deps.length);
    this.dependents = instances.map(() => []);
    this.isReady = instances.map(() => false);
    instances.forEach((x, i) => x.deps.forEach((d) => this.dependents[d]!.push(i)));
    this.state = dies.map(() => ({ compute: newEngine(), dram: newEngine(), nop: newEngine() }));
    instances.forEach((x, i) => {
      if (x.engine === 'nop') this.state[x.die]!.nop.order.push(i);
    });
    this.finish = dies.map(() => 0);
  }

  run(): void {
    const roots = this.instances.flatMap((_, i) => (this.pending[i] === 0 ? [i] : []));
    this.engine.schedule(0, () => roots.forEach((i) => this.becomeReady(i)));
    this.engine.run();
    assert(this.completed === this.instances.length, `program execution deadlocked: ${this.instances.length - this.completed} instances never ran`);
  }

  private becomeReady(i: number): void {
    const x = this.instances[i]!;
    if (x.engine === null) {
      this.complete(i);
      return;
    }
    this.isReady[i] = true;
    if (x.engine !== 'nop') heapPush(this.state[x.die]![x.engine].ready, i);
    this.dispatch(x.die, x.engine);
  }

  private dispatch(die: number, cls: EngineClass): void {
    const e = this.state[die]![cls];
    if (e.busy) return;
    const i = this.nextFor(e, cls);
    if (i === undefined) return;
    e.busy = true;
    const start = this.engine.now;
    const x = this.instances[i]!;
    const done = (): void => this.served(i, cls, start);
    if (x.collective !== null && x.collective.size > 1 && x.collective.steps > 0) this.startCollective(i, x.collective, done);
    else this.engine.schedule(start + x.seconds, done);
  }

  private nextFor(e: EngineState, cls: EngineClass): number | undefined {
    switch (cls) {
      case 'compute':
      case 'dram':
        return e.ready.length > 0 ? heapPop(e.ready) : undefined;
      case 'nop': {
        const i = e.order[e.next];
        if (i === undefined || !this.isReady[i]) return undefined;
        e.next++;
        return i;
      }
      default:
        return assertNever(cls);
    }
  }

  /** An engine finished instance `i`, which it started at `start`. */
  private served(i: number, cls: EngineClass, start: number): void {
    const die = this.instances[i]!.die;
    const e = this.state[die]![cls];
    const now = this.engine.now;
    e.busy = false;
    e.busyS += now - start;
    if (now > start) e.intervals.push([start, now]);
    this.complete(i);
    this.dispatch(die, cls);
  }

  private complete(i: number): void {
    const die = this.instances[i]!.die;
    this.completed++;
    this.finish[die] = Math.max(this.finish[die]!, this.engine.now);
    for (const d of this.dependents[i]!) {
      this.pending[d]!--;
      if (this.pending[d] === 0) this.becomeReady(d);
    }
  }

  // -- collectives as ring steps --------------------------------------------------------------

  private readonly onDone = new Map<number, () => void>();

  private startCollective(i: number, c: CollectiveWork, done: () => void): void {
    const r = this.meeting(c);
    assert(r.started[c.position] === null, `collective ${c.key} started twice at position ${c.position}`);
    r.started[c.position] = i;
    this.onDone.set(i, done);
    this.trySend(r, c.position);
  }

  private meeting(c: CollectiveWork): Rendezvous {
    const known = this.meetings.get(c.key);
    if (known) return known;
    const zeros = (): number[] => new Array<number>(c.size).fill(0);
    const r: Rendezvous = { started: new Array<number | null>(c.size).fill(null), recv: zeros(), sent: zeros(), delivered: zeros(), finished: new Array<boolean>(c.size).fill(false) };
    this.meetings.set(c.key, r);
    return r;
  }

  /** Send every step position `p` may send now: step s once step s−1 has arrived from its predecessor. */
  private trySend(r: Rendezvous, p: number): void {
    const i = r.started[p];
    if (i === null || i === undefined) return;
    const c = this.instances[i]!.collective!;
    while (r.sent[p]! < c.steps && (r.sent[p] === 0 || r.recv[p]! >= r.sent[p]!)) {
      r.sent[p]!++;
      this.fabric.send(c.plane, c.self, c.next, c.stepBytes, () => this.arrived(r, p, c));
    }
  }

  private arrived(r: Rendezvous, p: number, c: CollectiveWork): void {
    const q = (p + 1) % c.size;
    r.delivered[p]!++;
    r.recv[q]!++;
    this.trySend(r, q);
    this.checkDone(r, q);
    this.checkDone(r, p);
  }

  private checkDone(r: Rendezvous, p: number): void {
    const i = r.started[p];
    if (i === null || i === undefined || r.finished[p]) return;
    const steps = this.instances[i]!.collective!.steps;
    if (r.recv[p]! < steps || r.delivered[p]! < steps) return;
    r.finished[p] = true;
    if (r.finished.every(Boolean)) this.meetings.delete(this.instances[i]!.collective!.key);
    const done = this.onDone.get(i)!;
    this.onDone.delete(i);
    done();
  }

  // -- result ---------------------------------------------------------------------------------

  result(): ExecutionResult {
    const dies = this.dies.map((die, d): DieTiming => ({ die: [die.i, die.j], finish_s: this.finish[d]!, busy_s: this.busyOf(d) }));
    const latency = maxOf(this.finish);
    const critical = Math.max(0, this.finish.indexOf(latency));
    const busy = Object.fromEntries(ENGINE_CLASSES.map((c) => [c, maxOf(dies.map((t) => t.busy_s[c]))])) as EngineTimes;
    return {
      latency_s: latency,
      breakdown_s: exposed(this.state[critical]!),
      busy_s: busy,
      critical_die: dies[critical]!.die,
      dies,
      instances: this.instances.length,
      events: this.engine.eventsRun,
    };
  }

  private busyOf(d: number): EngineTimes {
    const s = this.state[d]!;
    return { compute: s.compute.busyS, dram: s.dram.busyS, nop: s.nop.busyS };
  }
}

function newEngine(): EngineState {
  return { busy: false, busyS: 0, ready: [], order: [], next: 0, intervals: [] };
}

/** Time during which exactly one engine class was busy, per class. */
function exposed(s: Record<EngineClass, EngineState>): EngineTimes {
  const edges: { at: number; cls: EngineClass; delta: number }[] = [];
  for (const cls of ENGINE_CLASSES) {
    for (const [a, b] of s[cls].intervals) edges.push({ at: a, cls, delta: 1 }, { at: b, cls, delta: -1 });
  }
  edges.sort((x, y) => x.at - y.at || x.delta - y.delta);
  const out: EngineTimes = { compute: 0, dram: 0, nop: 0 };
  const active: EngineTimes = { compute: 0, dram: 0, nop: 0 };
  let last = 0;
  for (const e of edges) {
    const busy = ENGINE_CLASSES.filter((c) => active[c] > 0);
    if (busy.length === 1) out[busy[0]!] += e.at - last;
    active[e.cls] += e.delta;
    last = e.at;
  }
  return out;
}

function maxOf(xs: readonly number[]): number {
  return xs.reduce((m, x) => Math.max(m, x), 0);
}

function heapPush(h: number[], x: number): void {
  let i = h.length;
  h.push(x);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (h[parent]! <= x) break;
    h[i] = h[parent]!;
    i = parent;
  }
  h[i] = x;
}

function heapPop(h: number[]): number {
  const top = h[0]!;
  const last = h.pop()!;
  if (h.length === 0) return top;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= h.length) break;
    const c = l + 1 < h.length && h[l + 1]! < h[l]! ? l + 1 : l;
    if (h[c]! >= last) break;
    h[i] = h[c]!;
    i = c;
  }
  h[i] = last;
  return top;
}

// The public face of hardware targets: load one (preset name or file), describe it, and the
// normalised `Target` types the passes and backends read. Schemas are exported for tools that
// validate hardware files on their own (editors, `gyges target`).

export { loadTarget, parsePresetName } from './load.js';
export {
  describeTarget,
  dieMacsPerS,
  targetToJSON,
  type DieEnergy,
  type DieSpec,
  type LinkSpec,
  type MemorySpec,
  type PackageKind,
  type PackageSpec,
  type Precision,
  type RouterPort,
  type RouterSpec,
  type Target,
} from './target.js';
export {
  dieSchema,
  hardwareFileSchema,
  hardwareSchema,
  linkSchema,
  memorySchema,
  packageFileSchema,
  packageSchema,
  PRECISIONS,
  ROUTER_PORTS,
} from './schema.js';

// Training checkpoints: everything a run needs to continue bit-identically — adapter weights,
// optimizer state, step, RNG states, EMA and loss history — in one safetensors file written to a
// temporary name and renamed, so a crash mid-write never leaves a half checkpoint.
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { openSafetensors, writeSafetensors, type TensorToWrite } from '../io/safetensors';
import type { HostTensor } from '../tensor';

export interface CheckpointState {
  step: number;
  /** Parameters and optimizer state, keyed as TrainStep.read() returns them (`name`, `name:m`, …). */
  tensors: Record<string, HostTensor>;
  /** JSON-serialisable state: RNG streams, loss history, settings fingerprint… */
  meta: Record<string, unknown>;
}

const FILE = /^step-(\d{8})\.safetensors$/;
export const checkpointName = (step: number) => `step-${String(step).padStart(8, '0')}.safetensors`;

const ST_DTYPE = { float32: 'F32', float16: 'F16', bfloat16: 'BF16', int64: 'I64', int32: 'I32', int8: 'I8', uint8: 'U8', bool: 'BOOL' } as const;
const FROM_ST: Record<string, HostTensor['dtype']> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16', I64: 'int64', I32: 'int32', I8: 'int8', U8: 'uint8', BOOL: 'bool' };

export async function saveCheckpoint(dir: string, state: CheckpointState): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, checkpointName(state.step));
  const tensors: Record<string, TensorToWrite> = {};
  for (const [k, t] of Object.entries(state.tensors)) tensors[k] = { dtype: ST_DTYPE[t.dtype], shape: t.shape, data: t.data as never };
  await writeSafetensors(path, tensors, { 'loragraph.step': String(state.step), 'loragraph.state': JSON.stringify(state.meta) });
  return path;
}

export async function loadCheckpoint(path: string): Promise<CheckpointState> {
  const r = await openSafetensors(path);
  try {
    const step = Number(r.metadata['loragraph.step']);
    if (!Number.isInteger(step)) throw new Error(`${path}: not a loragraph training checkpoint (no step)`);
    const tensors: Record<string, HostTensor> = {};
    for (const name of r.names()) {
      const raw = await r.readRaw(name);
      const dtype = FROM_ST[raw.dtype];
      if (!dtype) throw new Error(`${path}: tensor '${name}' has unsupported dtype ${raw.dtype}`);
      tensors[name] = { dtype, shape: [...raw.shape], data: raw.data as HostTensor['data'] };
    }
    return { step, tensors, meta: JSON.parse(r.metadata['loragraph.state'] ?? '{}') };
  } finally {
    await r.close();
  }
}

/** Checkpoint files in a folder, oldest step first. */
export function listCheckpoints(dir: string): { step: number; path: string }[] {
  let names: string[];
  try { names = readdirSync(dir); } catch { return []; }
  return names.flatMap((n) => { const m = FILE.exec(n); return m ? [{ step: Number(m[1]), path: join(dir, n) }] : []; })
    .sort((a, b) => a.step - b.step);
}

export function latestCheckpoint(dir: string, atMostStep = Infinity) {
  return listCheckpoints(dir).filter((c) => c.step <= atMostStep).at(-1);
}

/** Keeps the newest `keep` checkpoints (0 = keep all). */
export function pruneCheckpoints(dir: string, keep: number) {
  if (keep <= 0) return;
  const all = listCheckpoints(dir);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) rmSync(c.path, { force: true });
}

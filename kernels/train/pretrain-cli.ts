// What the tiny-model pretraining scripts (SD, FLUX, Wan) share: progress state kept as safetensors in the
// scratch folder (written to a temporary name, then renamed, so a killed run never leaves half a file),
// their command line — `--out DIR`, `--scratch DIR` and one `--kebab-case N` flag per numeric option —
// and how their denoisers' training noise levels are drawn.
import { existsSync, renameSync } from 'node:fs';
import { resolve } from 'node:path';
import type { HostTensor } from '../tensor';
import type { Rng } from '../random';
import type { TrainStep } from './step';
import { shiftSigma } from '../schedules/flow-matching';
import { loadSafetensors, toFloat32, writeSafetensors, type TensorToWrite } from '../io/safetensors';

export type TrainState = Record<string, HostTensor>;

/** A saved state widened to float32, or undefined when the file does not exist yet. */
export async function loadTrainState(path: string): Promise<{ tensors: TrainState; metadata: Record<string, string> } | undefined> {
  if (!existsSync(path)) return undefined;
  const { tensors, metadata } = await loadSafetensors(path);
  return { tensors: Object.fromEntries([...tensors].map(([k, t]) => [k, { dtype: 'float32', shape: t.shape, data: toFloat32(t) }])), metadata };
}

export async function saveTrainState(path: string, tensors: TrainState, metadata: Record<string, string> = {}, dtype: 'F32' | 'F16' = 'F32'): Promise<void> {
  await writeSafetensors(`${path}.tmp`, Object.fromEntries(Object.entries(tensors).map(([k, t]): [string, TensorToWrite] => [k, { dtype, shape: t.shape, data: t.data as Float32Array }])), metadata);
  renameSync(`${path}.tmp`, path);
}

/**
 * One training phase of a staged pretraining (a tiny model's DiT from noise, then grown): its model
 * config, schedule and scratch files.
 */
export interface PretrainPhase<C> {
  label: string;
  cfg: C;
  steps: number;
  lr: number;
  warmup: number;
  /** Checkpoint of a run in progress, and the finished phase's weights. */
  progress: string;
  done: string;
  /** The options the result depends on, kept in the files' metadata (when their names do not say it). */
  recipe?: string;
  /** The name its batches' random streams are forked under (step by step, so a resumed run draws the same). */
  stream: string;
  /** Starting values from the fresh initial values (default: those). */
  init?: (fresh: TrainState) => TrainState;
}

/**
 * Stage D's cosine cycles (warm restarts): cycle k (from 1) trains steps[k − 1] steps from lr × decay^(k − 1),
 * starting from the weights cycle k − 1 finished with. One long cosine and two shorter ones end alike on
 * the loss, but a second restart kept moving the tiny models' samples after the first had, and it reuses
 * the first cycle's files instead of training them again. A cycle of 0 steps is skipped.
 */
export function polishCycles(steps: readonly number[], lr: number, decay: number): { cycle: number; steps: number; lr: number }[] {
  return steps.map((n, i) => ({ cycle: i + 1, steps: n, lr: lr * decay ** i })).filter((c) => c.steps > 0);
}

/**
 * The options stage D's cycle k depends on, for its files' recipe: the steps of cycles 1 to k, and the decay
 * only from cycle 2 on (cycle 1 runs from polishLr itself), so adding a cycle keeps the earlier ones' files.
 */
export function polishCycleOptions<O extends { polishSteps: number[]; polishDecay: number }>(o: O, cycle: number): Omit<O, 'polishDecay'> & { polishDecay?: number } {
  const { polishDecay, ...rest } = o;
  return { ...rest, polishSteps: o.polishSteps.slice(0, cycle), ...(cycle > 1 ? { polishDecay } : {}) };
}

/** Metadata a phase's scratch files carry: its recipe, when it has one. */
export const phaseMetadata = (phase: PretrainPhase<unknown>): Record<string, string> => (phase.recipe ? { recipe: phase.recipe } : {});

/**
 * Starts a phase's training: from its checkpoint in progress (one of its recipe, or of none — written
 * before recipes were recorded), else from `initial` passed through the phase's `init`. Returns the
 * first step to run.
 */
export async function startPhase(ts: Pick<TrainStep, 'load' | 'init'>, phase: PretrainPhase<unknown>, initial: () => TrainState, log: (line: string) => void): Promise<number> {
  const resumed = await loadTrainState(phase.progress);
  if (resumed && (resumed.metadata.recipe ?? phase.recipe) === phase.recipe) {
    await ts.load(resumed.tensors);
    const start = Number(resumed.metadata.step) + 1;
    log(`${phase.label}: resuming at step ${start}`);
    return start;
  }
  const fresh = initial();
  await ts.init(phase.init ? phase.init(fresh) : fresh);
  return 1;
}

/** A phase's finished weights from the scratch folder, when they are of its recipe. */
export async function finishedPhase(phase: PretrainPhase<unknown>, log: (line: string) => void): Promise<TrainState | undefined> {
  const finished = await loadTrainState(phase.done);
  if (!finished || finished.metadata.recipe !== phase.recipe) return undefined;
  log(`${phase.label}: weights from ${phase.done}`);
  return finished.tensors;
}

/**
 * `--out`, `--scratch` and the options of `defaults`: a number each (`--dit-steps 7` sets ditSteps), or a
 * comma-separated list of whole numbers for a list option (`--unet-extend-to 4000,8000`).
 */
export function parsePretrainArgs<O extends object>(argv: readonly string[], defaults: O, out: string, scratch: string): { o: O; out: string; scratch: string } {
  const o = { ...defaults } as Record<string, unknown>;
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`pretrain: ${flag} needs a value`);
    if (flag === '--out') out = resolve(value);
    else if (flag === '--scratch') scratch = resolve(value);
    else {
      const key = flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
      if (Array.isArray(o[key])) {
        const list = value.split(',').filter(Boolean).map(Number);
        if (list.some((n) => !Number.isInteger(n))) throw new Error(`pretrain: ${flag} takes whole numbers separated by commas, like 4000,8000 (got ${value})`);
        o[key] = list;
        continue;
      }
      if (!(key in o) || typeof o[key] !== 'number' || !Number.isFinite(Number(value))) throw new Error(`pretrain: unknown option ${flag} or bad value ${value}`);
      o[key] = Number(value);
    }
  }
  return { o: o as O, out, scratch };
}

/** Log lines stamped with the seconds since the run started. */
export function pretrainLog(): (line: string) => void {
  const start = Date.now();
  return (line) => console.log(`[${((Date.now() - start) / 1000).toFixed(0).padStart(5)}s] ${line}`);
}

/**
 * One training noise level of a flow-matching denoiser: with `shift` > 0 uniform σ shifted by it
 * (SD3's shift), which keeps the high-noise levels where FLUX.2's and Wan's sampling schedules spend
 * most of their steps; with 0 the logit-normal (0, 1) (ai-toolkit's `sigmoid`), which rarely passes 0.9.
 */
export function pretrainSigma(rng: Rng, shift: number): number {
  return shift > 0 ? shiftSigma(rng.uniform(), shift) : 1 / (1 + Math.exp(-rng.normal()));
}

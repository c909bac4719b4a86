// Load Model's `precision` and Train's `gradientCheckpointing` defaults, picked from the model's size:
// models of a billion denoiser parameters and more (SDXL, FLUX, Wan 14B…) store their frozen weights in
// bf16 and recompute blocks; smaller ones (SD 1.x, the tiny built-ins) keep fp32 and all activations,
// which is faster and fits. A chosen precision wraps the MODEL's denoiser in PrecisionWeights, with the
// narrowed weights written to a scratch file so ORT holds the only copy.
import { Builder } from '../../kernels/nn/builder';
import { PRECISIONS, PrecisionWeights, type Precision } from '../../kernels/nn/precision';
import { ShapeRecorder } from '../../kernels/nn/weights';
import { WeightFile } from '../../kernels/nn/weight-file';
import type { ModelValue } from '../sockets';

export const PRECISION_CHOICES = ['auto', ...PRECISIONS] as const;
export type PrecisionChoice = (typeof PRECISION_CHOICES)[number];
export const CHECKPOINTING_CHOICES = ['auto', 'on', 'off'] as const;
export type CheckpointingChoice = (typeof CHECKPOINTING_CHOICES)[number];

/** Denoiser parameters from which a model counts as large (SDXL's UNet has 2.6 B, SD 1.5's 0.86 B). */
export const LARGE_MODEL_PARAMETERS = 1e9;

/** Parameters of a MODEL's denoiser, counted on a symbolic build (its bytes depend on precision and quantisation). */
export function denoiserParameters(model: ModelValue): number {
  const part = model.family.parts(model.config).find((p) => p.role === 'denoiser')!;
  const shapes = new ShapeRecorder();
  part.trace(new Builder(shapes));
  let n = 0;
  for (const s of shapes.shapes.values()) n += s.reduce((a, b) => a * b, 1);
  return n;
}

/** The precision `auto` stands for, given the denoiser's parameter count. */
export function resolvePrecision(choice: PrecisionChoice, denoiserParams: number): Precision {
  return choice !== 'auto' ? choice : denoiserParams >= LARGE_MODEL_PARAMETERS ? 'bf16' : 'fp32';
}

/** Whether a Train node recomputes blocks: `auto` is on for large models. */
export function resolveCheckpointing(choice: CheckpointingChoice, model: ModelValue): boolean {
  return choice === 'auto' ? denoiserParameters(model) >= LARGE_MODEL_PARAMETERS : choice === 'on';
}

/**
 * The MODEL with its denoiser's big frozen weights stored in `precision` (fp32: unchanged), written to
 * a file under `tempDir` (removed when the server exits).
 */
export function withPrecision(model: ModelValue, precision: Precision, tempDir: string): ModelValue {
  if (precision === 'fp32') return model;
  const weights = new PrecisionWeights(model.denoiser, { precision, file: new WeightFile(tempDir, `${model.source.label}-${precision}`) });
  const fp32Bytes = model.byteSize();
  return Object.freeze({ ...model, denoiser: weights, byteSize: () => fp32Bytes / 2 });
}

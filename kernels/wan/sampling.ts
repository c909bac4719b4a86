// Wan previews: flow-matching Euler or UniPC (Wan's official `flow_unipc`) on a shifted schedule
// (σ' = sσ / (1 + (s − 1)σ); shift 5.0 for I2V, 16 for 2.1 FLF2V, 12.0 for 2.2 T2V A14B, 5.0 otherwise), and for Wan 2.2
// A14B one model call per step routed to the expert that owns the step's noise level — each expert with
// its own LoRA and its own CFG scale (musubi-tuner's guidance_scale / guidance_scale_high_noise).
import { shiftSigma } from '../schedules/flow-matching';
import { flowUniPCSigmas, sampleFlowUniPC } from '../schedules/flow-unipc';
import { flowSamplerSigmas } from '../schedules/schedulers';
import { sampleFlowEuler, type FlowModelCall } from '../flux/sampling';
import { Rng } from '../random';
import type { ModelCall, SampleRun } from '../families/contract';
import type { WanTransformerConfig } from './config';
import type { WanExpert } from './detect';
import { expertForTimestep } from './experts';
import { FIRST_FRAME, heldFirstFrames } from './ti2v';

/** The default sampling shift of a config (the official pipelines' sample_shift). */
export function defaultSampleShift(cfg: WanTransformerConfig): number {
  // Wan's generate.py: sample_shift 16 for flf2v (and vace).
  if (cfg.firstLastFrame) return 16;
  if (cfg.inChannels > cfg.outChannels) return 5.0;
  return cfg.name === 'wan2.2-t2v-a14b' ? 12.0 : 5.0;
}

/** steps + 1 noise levels from 1 to 0, evenly spaced, then shifted. */
export function wanSigmas(steps: number, shift: number): number[] {
  if (!(Number.isInteger(steps) && steps >= 1)) throw new RangeError(`steps must be a positive integer, got ${steps}`);
  return Array.from({ length: steps + 1 }, (_, i) => shiftSigma(1 - i / steps, shift));
}

/** The noise levels Wan's flow UniPC runs: flowUniPCSigmas on the fixed shift. */
export function wanUniPCSigmas(steps: number, shift: number): number[] {
  return flowUniPCSigmas(steps, (t) => shiftSigma(t, shift));
}

/** The preview samplers Wan offers, by ComfyUI name ('uni_pc' there; 'unipc' in Wan's and musubi's scripts). */
export const WAN_SAMPLERS = ['euler', 'unipc'] as const;

/** The denoiser's timestep input is σ · 1000. */
const TIMESTEP_SCALE = 1000;

export interface WanSampleOptions {
  /** Sampling shift (default: the config's official one). */
  shift?: number;
  /** Wan 2.2 A14B: the expert boundary; steps at σ ≥ boundary use `run.cfgScaleHighNoise`. */
  boundary?: number;
}

/**
 * One preview loop for a family's `sample`: `call` takes the unconditional and conditional halves and the
 * timestep; CFG is mixed here with the scale of the expert that owns each step's noise level (the
 * high-noise expert's when `run.cfgScaleHighNoise` is set, else `run.cfgScale` throughout). A first frame
 * given to 2.2 TI2V (`run.conditioning.first_frame`) stays the image latent: the denoiser sees it there at
 * timestep 0 on every call, the loop moves it nowhere (zero velocity), and the result holds it exactly.
 */
export async function sampleWan(call: ModelCall, cfg: WanTransformerConfig, run: SampleRun & { cfgScaleHighNoise?: number }, o: WanSampleOptions = {}): Promise<Float32Array> {
  const shift = o.shift ?? defaultSampleShift(cfg);
  const perImage = run.latentShape.reduce((a, b) => a * b, 1);
  const scaleAt = (sigma: number) => (o.boundary !== undefined && run.cfgScaleHighNoise && expertForTimestep(sigma, o.boundary) === 'high_noise' ? run.cfgScaleHighNoise : run.cfgScale);
  const first = heldFirstFrames(cfg.perTokenTimesteps ? run.conditioning?.[FIRST_FRAME] : undefined, run.latentShape, run.batch);
  const velocity = async (x: Float32Array, sigma: number) => {
    const both = new Float32Array(x.length * 2);
    both.set(x);
    both.set(x, x.length);
    const pred = await call(both, sigma * TIMESTEP_SCALE);
    const g = scaleAt(sigma);
    return first.still(Float32Array.from(x, (_, i) => pred[i]! + g * (pred[x.length + i]! - pred[i]!)));
  };
  // ComfyUI's schedulers run over the shifted levels as its discrete flow model sampling tabulates them (1000).
  const sigmas = (sampler: string) => flowSamplerSigmas(sampler, run.scheduler, run.steps, (t) => shiftSigma(t, shift), 1000);
  if (run.sampler === 'euler') {
    return first.hold(await sampleFlowEuler(async (x, t) => velocity(x, t), { sigmas: sigmas('euler'), guidance: { mode: 'distilled' }, seed: run.seed, perImage, batch: run.batch, onStep: run.onStep }));
  }
  if (run.sampler === 'unipc') {
    // Pure noise at σ₀ = shift(0.999), as the official sampler starts.
    const noise = new Rng(run.seed).fork('initial-noise').fillNormal(new Float32Array(perImage * run.batch));
    return first.hold(await sampleFlowUniPC(velocity, first.hold(noise), sigmas('unipc'), { onStep: run.onStep }));
  }
  throw new Error(`sampler: Wan samples with ${WAN_SAMPLERS.join(' or ')}, not '${run.sampler}'`);
}

export interface WanExpertCall {
  /** The expert's denoiser with its LoRA applied (the flow sampler's model call). */
  call: FlowModelCall;
  /** This expert's CFG scale (Wan 2.2 ships different ones per expert). */
  cfgScale: number;
}

/**
 * One FlowModelCall that runs, at each step, the expert owning the step's noise level. The flow sampler
 * mixes CFG with one scale (`samplerScale`, ≠ 1); each expert's own scale is met by stretching its
 * conditional half so that uncond + samplerScale·(stretched − uncond) = uncond + cfgScale·(cond − uncond).
 */
export function wanExpertModel(experts: Record<WanExpert, WanExpertCall>, boundary: number, samplerScale: number, onCall?: (expert: WanExpert, t: number) => void): FlowModelCall {
  return async (x, t, o) => {
    const expert = expertForTimestep(t, boundary);
    onCall?.(expert, t);
    const { call, cfgScale } = experts[expert];
    const pred = await call(x, t, o);
    if (!o.cfg) return pred;
    const half = pred.length / 2;
    const ratio = cfgScale / samplerScale;
    const out = Float32Array.from(pred);
    for (let i = 0; i < half; i++) out[half + i] = pred[i] + ratio * (pred[half + i] - pred[i]);
    return out;
  };
}

/**
 * Whether a Wan image-to-video checkpoint was also trained without a first frame (its condition zeroed
 * for a share of the clips, as loragraph's tiny Wan records in `loragraph_pretrain.conditionDropout`), so
 * previews may leave the start image out. Released I2V models were not: they need one.
 */
export function samplesWithoutStartImage(metadata: Readonly<Record<string, string>>): boolean {
  try {
    return Number(JSON.parse(metadata.loragraph_pretrain ?? '{}').conditionDropout) > 0;
  } catch {
    return false;
  }
}

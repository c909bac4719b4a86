// Wan previews: flow-matching Euler on a shifted schedule (σ' = sσ / (1 + (s − 1)σ); shift 5.0 for I2V,
// 12.0 for 2.2 T2V A14B, 5.0 otherwise) through kernels/flux's flow Euler sampler, and for Wan 2.2 A14B
// one model call per step routed to the expert that owns the step's noise level — each expert with its
// own LoRA and its own CFG scale.
import { shiftSigma } from '../schedules/flow-matching';
import type { FlowModelCall } from '../flux/sampling';
import type { WanTransformerConfig } from './config';
import type { WanExpert } from './detect';
import { expertForTimestep } from './experts';

/** The default sampling shift of a config (the official pipelines' sample_shift). */
export function defaultSampleShift(cfg: WanTransformerConfig): number {
  if (cfg.inChannels > cfg.outChannels) return 5.0;
  return cfg.name === 'wan2.2-t2v-a14b' ? 12.0 : 5.0;
}

/** steps + 1 noise levels from 1 to 0, evenly spaced, then shifted. */
export function wanSigmas(steps: number, shift: number): number[] {
  if (!(Number.isInteger(steps) && steps >= 1)) throw new RangeError(`steps must be a positive integer, got ${steps}`);
  return Array.from({ length: steps + 1 }, (_, i) => shiftSigma(1 - i / steps, shift));
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

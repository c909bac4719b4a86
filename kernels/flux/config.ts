// Sizes of the FLUX transformers. FLUX.2 ([klein] 4B/9B, dev) and FLUX.1 (dev, schnell) run through
// the same model code (kernels/flux/transformer.ts); these numbers and a few switches differ:
// FLUX.2 has no biases, one modulation shared by all blocks, SwiGLU MLPs (ratio 3), 4-axis RoPE
// (t, h, w, l) with theta 2000 and 128-channel patchified latents; FLUX.1 has biases, per-block
// modulation, GELU(tanh) MLPs (ratio 4), 3-axis RoPE with theta 10000, 64-channel packed latents and
// a pooled CLIP-L vector. Facts from black-forest-labs/flux2, ComfyUI comfy/ldm/flux and diffusers.

export interface FluxTransformerConfig {
  name: string;
  generation: 1 | 2;
  hiddenSize: number;
  numHeads: number;
  /** Double-stream (separate image and text weights) blocks. */
  depthDouble: number;
  /** Single-stream (joint sequence, parallel attention + MLP) blocks. */
  depthSingle: number;
  /** Width of the text encoder's per-token features (FLUX.2: 3 Qwen3/Mistral layers concatenated; FLUX.1: T5-XXL). */
  contextDim: number;
  /** Channels per image token (FLUX.2: 32 latent channels × 2×2 patch; FLUX.1: 16 × 2×2). */
  inChannels: number;
  mlpRatio: number;
  /** Channels of each head given to each RoPE position axis. */
  axesDim: number[];
  theta: number;
  /** Guidance-distilled models (FLUX.1-dev, FLUX.2-dev) embed the guidance scale like a timestep. */
  guidanceEmbed: boolean;
  /** FLUX.1: width of the pooled CLIP-L vector added to the time embedding (`vector_in`); 0 = none. */
  pooledDim: number;
  /** Linear layers carry biases (FLUX.1) or not (FLUX.2). */
  bias: boolean;
  /** One modulation per stream shared by every block (FLUX.2) or one per block (FLUX.1). */
  sharedModulation: boolean;
  mlpActivation: 'swiglu' | 'gelu_tanh';
  /** Channels of the sinusoidal timestep embedding fed to `time_in`. */
  timestepChannels: number;
}

export const headDim = (c: FluxTransformerConfig) => c.hiddenSize / c.numHeads;
export const mlpHidden = (c: FluxTransformerConfig) => Math.round(c.hiddenSize * c.mlpRatio);
/** The first MLP projection's width: SwiGLU projects to gate and value at once. */
export const mlpIn = (c: FluxTransformerConfig) => mlpHidden(c) * (c.mlpActivation === 'swiglu' ? 2 : 1);

type Flux2Sizes = Pick<FluxTransformerConfig, 'name' | 'hiddenSize' | 'numHeads' | 'depthDouble' | 'depthSingle' | 'contextDim' | 'guidanceEmbed'>;
const flux2 = (o: Flux2Sizes & Partial<FluxTransformerConfig>): FluxTransformerConfig => ({
  generation: 2, inChannels: 128, mlpRatio: 3, axesDim: [32, 32, 32, 32], theta: 2000, pooledDim: 0,
  bias: false, sharedModulation: true, mlpActivation: 'swiglu', timestepChannels: 256, ...o,
});

const flux1 = (o: Pick<FluxTransformerConfig, 'name' | 'guidanceEmbed'>): FluxTransformerConfig => ({
  ...o, generation: 1, hiddenSize: 3072, numHeads: 24, depthDouble: 19, depthSingle: 38, contextDim: 4096,
  inChannels: 64, mlpRatio: 4, axesDim: [16, 56, 56], theta: 10000, pooledDim: 768,
  bias: true, sharedModulation: false, mlpActivation: 'gelu_tanh', timestepChannels: 256,
});

/** FLUX.2 [klein] 4B: Qwen3-4B text features (3 × 2560). */
export const FLUX2_KLEIN_4B = flux2({ name: 'flux2-klein-4b', hiddenSize: 3072, numHeads: 24, depthDouble: 5, depthSingle: 20, contextDim: 7680, guidanceEmbed: false });
/** FLUX.2 [klein] 9B: Qwen3-8B text features (3 × 4096). */
export const FLUX2_KLEIN_9B = flux2({ name: 'flux2-klein-9b', hiddenSize: 4096, numHeads: 32, depthDouble: 8, depthSingle: 24, contextDim: 12288, guidanceEmbed: false });
/** FLUX.2 [dev]: Mistral-Small-3.2 text features (3 × 5120), guidance-distilled. */
export const FLUX2_DEV = flux2({ name: 'flux2-dev', hiddenSize: 6144, numHeads: 48, depthDouble: 8, depthSingle: 48, contextDim: 15360, guidanceEmbed: true });
export const FLUX1_DEV = flux1({ name: 'flux1-dev', guidanceEmbed: true });
export const FLUX1_SCHNELL = flux1({ name: 'flux1-schnell', guidanceEmbed: false });

/**
 * The klein architecture at miniature size (the embedded default's denoiser): every FLUX.2 switch
 * as in klein, 2 + 2 blocks of width 64 (4 heads of 16, 4 channels per RoPE axis), text features of
 * a tiny Qwen3 (3 × 32 channels).
 */
export const FLUX2_TINY = flux2({ name: 'flux2-tiny', hiddenSize: 128, numHeads: 4, depthDouble: 3, depthSingle: 3, contextDim: 96, guidanceEmbed: false, axesDim: [8, 8, 8, 8] });

/**
 * What users call a FLUX.2 variant: the guidance-distilled one is [dev] (BFL's FLUX.2-dev), every other
 * FLUX.2 — klein 4B/9B, and sizes no release has, the tiny default among them — is [klein].
 */
export const flux2Label = (c: FluxTransformerConfig): string => (c.guidanceEmbed ? 'FLUX.2 [dev]' : 'FLUX.2 [klein]');

export const FLUX_CONFIGS: Record<string, FluxTransformerConfig> = Object.fromEntries(
  [FLUX2_KLEIN_4B, FLUX2_KLEIN_9B, FLUX2_DEV, FLUX1_DEV, FLUX1_SCHNELL, FLUX2_TINY].map((c) => [c.name, c]),
);

/** Checks the numbers fit together (head width splits into the RoPE axes, heads divide the width). */
export function validateFluxConfig(c: FluxTransformerConfig): void {
  if (c.hiddenSize % c.numHeads) throw new Error(`${c.name}: width ${c.hiddenSize} does not split into ${c.numHeads} heads`);
  const axes = c.axesDim.reduce((a, b) => a + b, 0);
  if (axes !== headDim(c)) throw new Error(`${c.name}: RoPE axes [${c.axesDim}] cover ${axes} channels, heads have ${headDim(c)}`);
}

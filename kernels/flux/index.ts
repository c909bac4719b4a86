// The FLUX families, whole: FLUX.2 [klein] 4B/9B (and the dev config) and FLUX.1 dev/schnell.
//   config.ts        sizes and switches per variant, and the tiny klein
//   transformer.ts   the DiT (double/single blocks, shared or per-block modulation), BFL module paths
//   shapes.ts        full-size names/shapes/parameter counts without a weight
//   keys.ts          BFL ↔ diffusers tensor names (fused q/k/v as row slices), detect.ts the variant from keys
//   lora.ts          target presets and ai-toolkit / kohya / diffusers LoRA files
//   qwen3*.ts        klein's text encoder (hidden states 9/18/27) and its chat-template tokenizer
//   vae.ts           latent formats (FLUX.2 patchify + BatchNorm statistics, FLUX.1 shift/scale)
//   sampling.ts      flow Euler with FLUX.2's empirical μ, CFG / distilled / embedded guidance
//   training-graph.ts  a LoRA step on cached latent tokens; load.ts the checkpoint layouts
//   family.ts, family1.ts  flux2Family and flux1Family behind kernels/families' contract
//   tiny/            pretraining and eval of the tiny klein (npm run pretrain:tiny-flux, eval:tiny-flux)
// T5 lives in kernels/text (shared with SD3/Wan); RoPE, RMS norm, modulation, SwiGLU in kernels/dit.
export * from './config';
export * from './transformer';
export * from './keys';
export * from './detect';
export * from './shapes';
export * from './lora';
export * from './qwen3';
export * from './qwen3-tokenizer';
export * from './bpe-tokenizer-json';
export * from './vae';
export * from './sampling';
export * from './training-graph';
export * from './load';
export * from './family';
export * from './family1';

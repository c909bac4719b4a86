// The FLUX family (FLUX.2 [klein] 4B/9B and dev, FLUX.1 dev/schnell): configs, the transformer,
// BFL ↔ diffusers names, detection, and full-size shapes without weights.
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

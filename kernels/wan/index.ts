// Wan 2.1 / 2.2 video models: configs, the transformer, full-size shapes, Wan ↔ diffusers names, detection.
export * from './config';
export * from './transformer';
export * from './shapes';
export * from './keys';
export * from './detect';
export * from './lora';
export * from './experts';
export * from './causal-conv';
export * from './vae';
export * from './umt5';
export * from './training-graph';
export * from './sampling';
export * from './vae22';
export * from './family';
export * from './load';
export * from './vae-keys';

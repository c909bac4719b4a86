// Diffusion-transformer building blocks shared by the DiT families (FLUX.1/2, Wan, Z-Image) and
// their LLM text encoders.
export * from './layers';

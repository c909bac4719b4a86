// Schedules that drive a training run: learning rate, noise (DDPM, flow matching), timestep
// sampling, multistage experts and EMA.
export * from './lr';
export * from './ddpm';
export * from './flow-matching';
export * from './flow-unipc';
export * from './timestep-sampling';
export * from './multistage';
export * from './ema';

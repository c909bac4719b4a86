// Seeded, serialisable randomness for training (see rng.ts) and the normal-distribution math the
// samplers build on.
export { Rng, type RngState } from './rng';
export { philox4x32 } from './philox';
export { erf, erfc, normalCdf, normalPdf, normalQuantile } from './gaussian';

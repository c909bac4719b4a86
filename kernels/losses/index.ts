// Losses and the diffusion training objective.
export { elementLoss, perSampleLoss, batchLoss, type LossOptions, type LossType } from './losses';
export { ddpmTrainingPair, flowTrainingPair, minSnrWeights } from './diffusion';
export { applyNoiseOffset } from './noise-offset';

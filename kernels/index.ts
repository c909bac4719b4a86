// The engine's public surface: symbolic tensors, ops, autodiff, compilation to ONNX, and the runtime.
import './ops/elementwise';
import './ops/shape-and-reduce';
import './ops/nn';

export * from './tensor';
export * from './ops/elementwise';
export * from './ops/shape-and-reduce';
export * from './ops/nn';
export { grad, topoOrder } from './autodiff';
export { compileGraph, setExternalDataRoot, type CompiledGraph, type IOSpec } from './compile';
export { Runtime, Session, defaultRuntime, type ExecutionProvider, type Feed } from './runtime';
export { opNames } from './ops/table';
export { Builder, type ModuleInfo, type LinearInfo, type ConvInfo, type AdapterHook } from './nn/builder';
export { HostWeights, ShapeRecorder, RandomWeights, type WeightSource } from './nn/weights';
export { TrainStep, clipByGlobalNorm, type TrainStepSpec } from './train/step';
export type { Optimizer, StateSpec, StepScalars } from './optim/optimizer';
export { adamw } from './optim/adamw';

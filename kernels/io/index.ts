// Reading and writing weights: safetensors files and the narrow float formats they hold.
export * from './dtypes';
export * from './safetensors';

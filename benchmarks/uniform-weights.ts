// Random frozen weights for the block benchmarks (bench:flux, bench:wan): a cheap stand-in for a
// checkpoint's, made on request.
import * as K from '../kernels';
import { WeightFile, bytesOf } from '../kernels/nn/weight-file';

/**
 * Uniform weights of std 0.02, and 1 for the norm scales `ones` matches. With a `file`, each goes into it
 * and reaches the graph as external data — as a checkpoint's weights do — so the process keeps no JS
 * copy and ORT reads them into its own memory; without one they are in-memory constants.
 */
export class UniformWeights implements K.WeightSource {
  private s = 12345;
  constructor(private readonly ones: RegExp, private readonly file?: WeightFile) {}

  get(path: string, shape: readonly number[]): K.Tensor {
    const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (this.ones.test(path)) out.fill(1);
    else {
      const half = 0.02 * Math.sqrt(3), step = (2 * half) / 2 ** 32;
      for (let i = 0; i < out.length; i++) { this.s = (Math.imul(this.s, 1664525) + 1013904223) >>> 0; out[i] = this.s * step - half; }
    }
    return this.file ? K.externalConstant(this.file.append(bytesOf(out)), shape, 'float32', path) : K.constant(out, shape, 'float32', path);
  }
}

/**
 * Frozen weights for the memory pre-flight alone: each a constant as the step's graph holds it (external
 * data of its fp32 size) whose bytes are never made or read. A ShapeRecorder's placeholder inputs would
 * hide what ORT does with constants — keeping a prepacked copy beside a weight the backward pass reads.
 */
export class PreflightWeights implements K.WeightSource {
  private end = 0;
  get(path: string, shape: readonly number[]): K.Tensor {
    const length = 4 * shape.reduce((a, b) => a * b, 1);
    const ext = { path: '(pre-flight only)', offset: this.end, length };
    this.end += length;
    return K.externalConstant(ext, shape, 'float32', path);
  }
}

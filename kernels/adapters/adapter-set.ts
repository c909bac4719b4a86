// An AdapterSet is one LoRA / LoCon / LoKr network over a model: it decides which modules are adapted,
// produces the builder's AdapterHook, and knows its parameters (kohya/LyCORIS names, shapes, seeded
// initial values), its trainable count, the file it will save, its dropout masks and its strength input.
import { input, type HostTensor, type Tensor } from '../tensor';
import { cast, mul } from '../ops/elementwise';
import type { AdapterHook, ModuleInfo } from '../nn/builder';
import { Rng } from '../random';
import type { SafetensorsDtype, TensorToWrite } from '../io/safetensors';
import { safetensorsFileBytes } from '../io/safetensors';
import { targetFilter, type TargetSpec } from './targets';
import { kohyaNamer, type LoraNamer } from './naming';
import { loraModule } from './lora';
import { lokrModule } from './lokr';
import type { AdapterModule, AdapterParam } from './module';

export interface AdapterSetOptions {
  /** `lora` (LoRA on linear / 1×1 layers, LoCon on larger convs) or `lokr`. Default `lora`. */
  algo?: 'lora' | 'lokr';
  targets?: TargetSpec;
  /**
   * Which modules to adapt, when a model family defines its own preset (FLUX's BFL paths): replaces
   * `targets` entirely (the caller folds include/exclude in).
   */
  filter?: (m: ModuleInfo) => boolean;
  /** Rank and alpha of linear (and 1×1 conv) modules — kohya's network_dim / network_alpha. */
  rank: number;
  alpha?: number;
  /** Rank and alpha of convs with a kernel > 1 (kohya's conv_dim / conv_alpha). Default: rank / alpha. */
  convRank?: number;
  convAlpha?: number;
  /** LoKr: factor, decompose both factors, full-rank. */
  factor?: number;
  decomposeBoth?: boolean;
  fullMatrix?: boolean;
  /** Neuron dropout on the down projection's output while training (kohya's `dropout`). LoRA/LoCon only. */
  dropout?: number;
  /** Maps module paths to kohya names. Default: `lora_unet_<path with _>`. */
  namer?: LoraNamer;
}

export type AdapterMode = { training: true } | { training: false };

/** The graph input carrying the adapter strength (LoRA weight / multiplier) in inference graphs. */
export const MULTIPLIER_INPUT = 'lora_multiplier';

/**
 * One strength input shared by every set: a graph adapted by several sets (SDXL's two text encoders,
 * each with its own set) has a single `lora_multiplier`, as one LoRA strength scales all of them.
 */
const SHARED_MULTIPLIER = input(MULTIPLIER_INPUT, [], 'float32');

export class AdapterSet {
  private readonly byModule = new Map<string, AdapterModule>();
  private readonly paramTensors = new Map<string, Tensor>();
  private readonly masks = new Map<string, Tensor>();
  private multiplierTensor?: Tensor;
  private readonly wanted: (m: ModuleInfo) => boolean;
  private readonly namer: LoraNamer;

  constructor(readonly options: AdapterSetOptions) {
    const { rank, dropout = 0, algo = 'lora' } = options;
    if (!(Number.isInteger(rank) && rank >= 1)) throw new Error(`adapter rank must be a positive integer, got ${rank}`);
    if (options.convRank !== undefined && !(Number.isInteger(options.convRank) && options.convRank >= 1)) throw new Error(`adapter convRank must be a positive integer, got ${options.convRank}`);
    if (!(dropout >= 0 && dropout < 1)) throw new Error(`adapter dropout must be in [0, 1), got ${dropout}`);
    if (algo !== 'lora' && algo !== 'lokr') throw new Error(`unknown adapter algo '${String(algo)}' (expected lora or lokr)`);
    if (algo === 'lokr' && dropout > 0) throw new Error('LoKr has no neuron dropout (as LyCORIS); set dropout to 0');
    this.wanted = options.filter ?? targetFilter(options.targets);
    this.namer = options.namer ?? kohyaNamer();
  }

  /**
   * The hook for a Builder. Training hooks add dropout masks (when dropout > 0) as graph inputs;
   * inference hooks scale every delta by the `lora_multiplier` graph input (strength), so one
   * sampling session serves any strength. Build each graph with a fresh hook call.
   */
  hook(mode: AdapterMode = { training: true }): AdapterHook {
    return (info, x) => {
      const m = this.moduleFor(info);
      if (!m) return undefined;
      const param = (key: string) => this.paramTensor(m, key);
      const p = this.options.dropout ?? 0;
      const mask = mode.training && p > 0 ? (shape: readonly number[]) => this.maskTensor(m.name, shape) : undefined;
      const d = m.delta(x, param, mask);
      return mode.training ? d : mul(d, this.multiplier(x));
    };
  }

  /** The adapter for a module, made on first sight if the targets select it. */
  private moduleFor(info: ModuleInfo): AdapterModule | undefined {
    const known = this.byModule.get(info.module);
    if (known) return known;
    if (!this.wanted(info)) return undefined;
    const o = this.options;
    const name = this.namer(info.module);
    const isBigConv = info.kind === 'conv' && (info.kernel[0] > 1 || info.kernel[1] > 1);
    const rank = isBigConv ? o.convRank ?? o.rank : o.rank;
    const alpha = isBigConv ? o.convAlpha ?? o.alpha : o.alpha;
    const m = (o.algo ?? 'lora') === 'lokr'
      ? lokrModule(name, info, { rank, alpha, factor: o.factor, decomposeBoth: o.decomposeBoth, fullMatrix: o.fullMatrix })
      : loraModule(name, info, { rank, alpha });
    for (const other of this.byModule.values()) if (other.name === name) throw new Error(`modules '${other.info.module}' and '${info.module}' both map to LoRA name '${name}'`);
    this.byModule.set(info.module, m);
    return m;
  }

  private paramTensor(m: AdapterModule, key: string): Tensor {
    let t = this.paramTensors.get(key);
    if (!t) {
      const spec = m.params.find((p) => p.key === key)!;
      t = input(key, spec.shape);
      this.paramTensors.set(key, t);
    }
    return t;
  }

  private maskTensor(name: string, shape: readonly number[]): Tensor {
    const key = `dropout:${name}`;
    const t = this.masks.get(key);
    if (t) {
      if (t.shape.join() !== shape.join()) throw new Error(`${name}: dropout mask needed with two shapes [${t.shape}] and [${shape}] (module used twice)`);
      return t;
    }
    const made = input(key, shape);
    this.masks.set(key, made);
    return made;
  }

  private multiplier(like: Tensor): Tensor {
    this.multiplierTensor = SHARED_MULTIPLIER;
    return cast(this.multiplierTensor, like.dtype);
  }

  /** Adapted modules, in the order the model first built them. */
  get modules(): AdapterModule[] { return [...this.byModule.values()]; }

  /** Every trainable tensor's spec (key, shape, init). */
  get paramSpecs(): AdapterParam[] { return this.modules.flatMap((m) => m.params); }

  /** The trainable parameters as graph inputs keyed by tensor name (TrainStep's `params`). */
  get params(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const m of this.modules) for (const p of m.params) out[p.key] = this.paramTensor(m, p.key);
    return out;
  }

  /**
   * Graph inputs besides the parameters that graphs built with this set's hooks read: dropout masks
   * (training) and the strength input (inference), to list among a compiled graph's inputs.
   */
  get extraInputs(): Tensor[] {
    return [...this.masks.values(), ...(this.multiplierTensor ? [this.multiplierTensor] : [])];
  }

  get dropoutInputs(): Tensor[] { return [...this.masks.values()]; }

  get trainableCount(): number {
    return this.paramSpecs.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
  }

  /**
   * Initial values, deterministic from `seed`: kaiming-uniform U(±1/√fanIn) or zeros per tensor. Each
   * tensor draws from its own fork of the generator (by name), so adding a module changes no other.
   */
  initialValues(seed: number | string | Rng): Record<string, HostTensor> {
    const rng = seed instanceof Rng ? seed : new Rng(seed);
    const out: Record<string, HostTensor> = {};
    for (const p of this.paramSpecs) {
      const data = new Float32Array(p.shape.reduce((a, b) => a * b, 1));
      if (p.init === 'kaiming') {
        const bound = 1 / Math.sqrt(p.fanIn);
        rng.fork(p.key).fillUniform(data, -bound, bound);
      }
      out[p.key] = { dtype: 'float32', shape: [...p.shape], data };
    }
    return out;
  }

  /**
   * Dropout masks for one training step: each element kept with probability 1 − p and scaled by
   * 1/(1 − p) (inverted dropout, as torch), drawn from `rng` in a fixed order so runs are reproducible.
   */
  dropoutFeeds(rng: Rng): Record<string, HostTensor> {
    const p = this.options.dropout ?? 0;
    const out: Record<string, HostTensor> = {};
    for (const [key, t] of this.masks) {
      const data = rng.fork(key).fillUniform(new Float32Array(t.size));
      for (let i = 0; i < data.length; i++) data[i] = data[i] >= p ? 1 / (1 - p) : 0;
      out[key] = { dtype: 'float32', shape: [...t.shape], data };
    }
    return out;
  }

  /** The strength feed for inference graphs. */
  static multiplierFeed(strength: number): Record<string, HostTensor> {
    return { [MULTIPLIER_INPUT]: { dtype: 'float32', shape: [], data: new Float32Array([strength]) } };
  }

  /** Tensors to save (values from training + one `.alpha` per module), in kohya/LyCORIS layout. */
  fileTensors(values: Record<string, HostTensor>, dtype: SafetensorsDtype = 'F16'): Record<string, TensorToWrite> {
    if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') throw new Error(`adapters save as F32, F16 or BF16, not ${dtype}`);
    const out: Record<string, TensorToWrite> = {};
    for (const m of this.modules) {
      for (const p of m.params) {
        const v = values[p.key];
        if (!v) throw new Error(`adapter values lack '${p.key}'`);
        if (v.dtype !== 'float32' || v.data.length !== p.shape.reduce((a, b) => a * b, 1)) throw new Error(`adapter value '${p.key}' must be float32 [${p.shape}]`);
        out[p.key] = { dtype, shape: p.shape, data: v.data as Float32Array };
      }
      out[`${m.name}.alpha`] = { dtype, shape: [], data: new Float32Array([m.alpha]) };
    }
    return out;
  }

  /** Exact size in bytes of the safetensors file `fileTensors` + `metadata` will produce. */
  fileBytes(dtype: SafetensorsDtype = 'F16', metadata: Record<string, string> = {}): number {
    return safetensorsFileBytes(this.fileEntries(dtype), metadata);
  }

  /** Names, dtypes and shapes of the tensors `fileTensors` writes. */
  fileEntries(dtype: SafetensorsDtype = 'F16'): [string, { dtype: SafetensorsDtype; shape: number[] }][] {
    return this.modules.flatMap((m) => [
      ...m.params.map((p): [string, { dtype: SafetensorsDtype; shape: number[] }] => [p.key, { dtype, shape: p.shape }]),
      [`${m.name}.alpha`, { dtype, shape: [] }] as [string, { dtype: SafetensorsDtype; shape: number[] }],
    ]);
  }
}

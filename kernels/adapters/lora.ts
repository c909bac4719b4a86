// LoRA (Hu et al.) as kohya's networks/lora.py builds it: ΔW = up · down × alpha/rank, down initialised
// kaiming-uniform and up zero, so training starts from the unchanged model. On a linear layer down is
// [rank, in]; on a conv it is a conv with the layer's kernel, stride and padding and `rank` output
// channels, followed by a 1×1 conv up (LoCon when the kernel is larger than 1×1). Neuron dropout
// (kohya's `dropout`) masks the down projection's output during training.
import type { Tensor } from '../tensor';
import { conv2d, linear } from '../ops/nn';
import { mul } from '../ops/elementwise';
import type { ModuleInfo } from '../nn/builder';
import { matmulHost, type AdapterModule, type AdapterParam } from './module';

export interface LoraConfig {
  rank: number;
  /** Default: rank (scale 1). */
  alpha?: number;
}

export function loraModule(name: string, info: ModuleInfo, cfg: LoraConfig): AdapterModule {
  const rank = cfg.rank;
  if (!(Number.isInteger(rank) && rank >= 1)) throw new Error(`${info.module}: LoRA rank must be a positive integer, got ${rank}`);
  const alpha = cfg.alpha === undefined || cfg.alpha === 0 ? rank : cfg.alpha;
  const scale = alpha / rank;
  const downKey = `${name}.lora_down.weight`, upKey = `${name}.lora_up.weight`;
  let params: AdapterParam[];
  if (info.kind === 'linear') {
    params = [
      { key: downKey, shape: [rank, info.inFeatures], init: 'kaiming', fanIn: info.inFeatures },
      { key: upKey, shape: [info.outFeatures, rank], init: 'zeros', fanIn: rank },
    ];
  } else {
    if (info.groups !== 1) throw new Error(`${info.module}: grouped convolutions cannot take a LoRA`);
    const [kh, kw] = info.kernel;
    params = [
      { key: downKey, shape: [rank, info.inChannels, kh, kw], init: 'kaiming', fanIn: info.inChannels * kh * kw },
      { key: upKey, shape: [info.outChannels, rank, 1, 1], init: 'zeros', fanIn: rank },
    ];
  }
  const isLoCon = info.kind === 'conv' && (info.kernel[0] > 1 || info.kernel[1] > 1);
  return {
    algo: isLoCon ? 'locon' : 'lora',
    name, info, rank, alpha, scale, params,
    delta(x, param, dropoutMask) {
      let h: Tensor = info.kind === 'linear'
        ? linear(x, param(downKey))
        : conv2d(x, param(downKey), undefined, { stride: info.stride, padding: info.padding });
      if (dropoutMask) h = mul(h, dropoutMask(h.shape));
      const y = info.kind === 'linear' ? linear(h, param(upKey)) : conv2d(h, param(upKey));
      return scale === 1 ? y : mul(y, scale);
    },
    weightDelta(value) {
      const out = info.kind === 'linear' ? info.outFeatures : info.outChannels;
      const fanIn = params[0].fanIn;
      const d = matmulHost(value(upKey), value(downKey), out, rank, fanIn);
      for (let i = 0; i < d.length; i++) d[i] *= scale;
      return d;
    },
  };
}

// The LoRA Target node: what to train — network type (LoRA / LoCon / LoKr), rank and alpha (kohya's
// network_dim / network_alpha), conv rank/alpha, dropout, LoKr factor, which modules, and whether the
// text encoder trains too. With a MODEL connected it shows the trainable parameters and the file size.
// The presets are the family's own where it has them (FLUX: attention_ff is ai-toolkit's default over
// BFL module paths; kernels/flux/lora.ts fluxTargetSpec).
import { z } from 'zod';
import { compilePattern, TARGET_PRESETS } from '../kernels/adapters';
import { defineNode, input, widget } from './define';
import { adapterFacts } from './models/adapters';
import type { AdapterSpec, ModelValue } from './sockets';

export const NETWORK_TYPES = ['LoRA', 'LoCon', 'LoKr'] as const;

/** Non-empty lines of a multi-line widget, trimmed; `#` starts a comment line. */
export function patternLines(text: string, field: string): string[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const l of lines) {
    try { compilePattern(l); } catch (e) { throw new Error(`${field}: ${(e as Error).message}`); }
  }
  return lines;
}

const formatBytes = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${(n / 1024).toFixed(1)} KB`);

export default defineNode({
  type: 'LoraTarget',
  title: 'LoRA Target',
  category: 'training',
  description: 'The adapter network to train: type, rank/alpha, which modules, and whether the text encoder trains.',
  version: 1,
  inputs: {
    model: input<ModelValue>('MODEL', { optional: true, tooltip: 'connect to see the number of trainable parameters and the file size' }),
  },
  widgets: z.object({
    networkType: widget.combo(NETWORK_TYPES, { default: 'LoRA', tooltip: 'LoRA: linear and 1×1 layers; LoCon: LoRA plus the 3×3 convs (ResNets) at conv rank; LoKr: LyCORIS Kronecker product' }),
    rank: widget.int({ default: 16, min: 1, max: 1024, tooltip: 'network_dim: rank of the low-rank update (4–32 is typical)' }),
    alpha: widget.float({ default: 16, min: 0, max: 1024, step: 1, tooltip: 'network_alpha: the update is scaled by alpha / rank (0 = rank, scale 1)' }),
    convRank: widget.int({ default: 8, min: 1, max: 1024, tooltip: 'conv_dim: rank for 3×3 convs (LoCon, LoKr with convs)' }),
    convAlpha: widget.float({ default: 8, min: 0, max: 1024, step: 1, tooltip: 'conv_alpha: alpha for 3×3 convs' }),
    dropout: widget.float({ default: 0, min: 0, max: 0.99, step: 0.01, tooltip: 'neuron dropout on the down projection while training (LoRA/LoCon)' }),
    lokrFactor: widget.int({ default: -1, min: -1, max: 1024, tooltip: 'LoKr factor: size of the small Kronecker factor; -1 splits near √dim' }),
    lokrFullMatrix: widget.toggle({ default: false, tooltip: 'LoKr: keep both factors full matrices (no low-rank decomposition; alpha is ignored)' }),
    targetPreset: widget.combo(TARGET_PRESETS as unknown as readonly ['attention', 'attention_ff', 'all_linear', 'all_linear_conv'], { default: 'attention_ff', tooltip: 'attention: q/k/v/out; attention_ff: plus feed-forward; all_linear: every linear and 1×1 layer; all_linear_conv: plus 3×3 convs. FLUX: attention = the double blocks\' qkv and proj; attention_ff = ai-toolkit\'s default (double blocks\' qkv, proj, mlp.0, mlp.2 of both streams; single blocks\' linear1, linear2: 112 modules on klein 9B); all_linear = every linear layer (embedders, modulations, final layer too)' }),
    include: widget.text({ default: '', multiline: true, tooltip: 'only modules matching one of these (one per line; glob like *attn2* or /regex/), e.g. up_blocks.*' }),
    exclude: widget.text({ default: '', multiline: true, tooltip: 'leave out modules matching any of these (one per line)' }),
    trainTextEncoder: widget.toggle({ default: false, tooltip: 'also train LoRA modules in the text encoder (lora_te_…)' }),
  }),
  outputs: { adapter: 'ADAPTER' },
  execute({ inputs, widgets: w }) {
    if (w.networkType === 'LoKr' && w.dropout > 0) throw new Error('dropout: LoKr has no neuron dropout; set dropout to 0 or choose LoRA/LoCon');
    const spec: AdapterSpec = Object.freeze({
      kind: 'adapter' as const,
      algo: w.networkType,
      rank: w.rank,
      alpha: w.alpha,
      convRank: w.convRank,
      convAlpha: w.convAlpha,
      dropout: w.dropout,
      factor: w.lokrFactor,
      fullMatrix: w.lokrFullMatrix,
      preset: w.networkType === 'LoCon' ? 'all_linear_conv' : w.targetPreset,
      include: Object.freeze(patternLines(w.include, 'include')),
      exclude: Object.freeze(patternLines(w.exclude, 'exclude')),
      trainTextEncoder: w.trainTextEncoder,
      byteSize: () => 512,
    });
    const scale = (w.alpha || w.rank) / w.rank;
    const text = [`${w.networkType} rank ${w.rank}, alpha ${w.alpha} (scale ${+scale.toFixed(4)})${spec.preset.includes('conv') ? `, conv ${w.convRank}/${w.convAlpha}` : ''} · ${spec.preset}${w.trainTextEncoder ? ' + text encoder' : ''}`];
    const ui: Record<string, unknown> = {};
    if (inputs.model) {
      const facts = adapterFacts(spec, inputs.model);
      const denoiser = inputs.model.family.parts(inputs.model.config).find((p) => p.role === 'denoiser')?.id === 'unet' ? 'UNet' : 'transformer';
      text.push(`${facts.params.toLocaleString('en-US')} trainable parameters in ${facts.denoiserModules} ${denoiser}${facts.textEncoderModules ? ` + ${facts.textEncoderModules} text-encoder` : ''} modules`);
      text.push(`file: ${formatBytes(facts.fileBytes)} (fp16)`);
      Object.assign(ui, { trainableParams: facts.params, fileBytes: facts.fileBytes });
    }
    return { outputs: { adapter: spec }, ui: { text, ...ui } };
  },
});

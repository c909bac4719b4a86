// The safetensors metadata a saved LoRA carries, under the keys kohya's sd-scripts writes and tools read
// (A1111/Forge's LoRA info, ComfyUI, civitai): network type, dim/alpha/args, base model, training facts,
// a few modelspec keys, and the loragraph graph that produced it.
import type { AdapterSpec, TrainingValue } from '../sockets';

export interface LoraMetadataInput {
  training: TrainingValue;
  /** What the file holds (the spec it was saved with). */
  spec: AdapterSpec;
  name: string;
  format: 'kohya' | 'peft';
  usedEma: boolean;
  /** The graph being run (ctx.workflow), stored as JSON when present. */
  workflow?: unknown;
  now?: Date;
}

export function loraMetadata(o: LoraMetadataInput): Record<string, string> {
  const { training: t, spec } = o;
  const now = o.now ?? new Date();
  const hasConv = spec.algo !== 'LoRA' || spec.preset === 'all_linear_conv';
  const args: Record<string, unknown> = {};
  if (spec.algo === 'LoKr') Object.assign(args, { algo: 'lokr', factor: spec.factor, ...(spec.fullMatrix ? { full_matrix: true } : {}) });
  if (hasConv) Object.assign(args, { conv_dim: spec.convRank, conv_alpha: spec.convAlpha });
  if (spec.dropout > 0) args.dropout = spec.dropout;
  const base: Record<string, string> = {
    ss_output_name: o.name,
    ss_sd_model_name: t.base.label,
    ss_base_model_version: 'sd_v1',
    ss_v2: 'False',
    ss_optimizer: t.optimizerName,
    ss_steps: String(t.step),
    ss_training_finished_at: String(Math.floor(now.getTime() / 1000)),
    'modelspec.sai_model_spec': '1.0.0',
    'modelspec.architecture': spec.algo === 'LoKr' ? 'stable-diffusion-v1/lycoris' : 'stable-diffusion-v1/lora',
    'modelspec.title': o.name,
    'modelspec.date': now.toISOString().slice(0, 10),
  };
  // What the file's tensors are wins over anything the Train node recorded.
  const network: Record<string, string> = {
    ss_network_module: spec.algo === 'LoKr' ? 'lycoris.kohya' : 'networks.lora',
    ss_network_dim: String(spec.rank),
    ss_network_alpha: String(spec.alpha || spec.rank),
    ss_network_args: JSON.stringify(Object.fromEntries(Object.entries(args).map(([k, v]) => [k, String(v)]))),
    ss_network_train_unet_only: spec.trainTextEncoder ? 'False' : 'True',
    ...(spec.dropout > 0 ? { ss_network_dropout: String(spec.dropout) } : {}),
    loragraph_format: o.format,
    loragraph_ema: o.usedEma ? 'True' : 'False',
    loragraph_base_model_id: t.base.id,
    ...(o.workflow !== undefined ? { loragraph_workflow: JSON.stringify(o.workflow) } : {}),
  };
  return { ...base, ...t.metadata, ...network };
}

/** `{name}`, `{step}` and `{date}` filled in; `.safetensors` added when missing. */
export function loraFileName(pattern: string, v: { name: string; step: number; now?: Date }): string {
  const now = v.now ?? new Date();
  const pad = (n: number) => String(n).padStart(2, '0');
  const date = `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`;
  const unknown = /\{(?!name\}|step\}|date\})[^}]*\}/.exec(pattern);
  if (unknown) throw new Error(`fileName: unknown placeholder ${unknown[0]} (use {name}, {step}, {date})`);
  const filled = pattern.replace(/\{name\}/g, v.name).replace(/\{step\}/g, String(v.step).padStart(6, '0')).replace(/\{date\}/g, date).trim();
  if (!filled || /(^|\/)\.\.?(\/|$)/.test(filled)) throw new Error(`fileName: "${pattern}" gives no usable file name`);
  return filled.endsWith('.safetensors') ? filled : `${filled}.safetensors`;
}

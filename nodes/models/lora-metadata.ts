// The safetensors metadata a saved LoRA carries, under the keys kohya's sd-scripts writes and tools read
// (A1111/Forge's LoRA info, ComfyUI, civitai): network type, dim/alpha/args, base model, training facts,
// the modelspec block as sd-scripts writes it (ModelSpec 1.0.1), and the loragraph graph that produced it.
import { familyById } from '../../kernels/families/registry';
import type { AdapterSpec, TrainingValue } from '../sockets';
import type { LoraFormat } from './lora-file';

export interface LoraMetadataInput {
  training: TrainingValue;
  /** What the file holds (the spec it was saved with). */
  spec: AdapterSpec;
  name: string;
  format: LoraFormat;
  usedEma: boolean;
  /** The graph being run (ctx.workflow), stored as JSON when present. */
  workflow?: unknown;
  now?: Date;
}

/**
 * The training resolution in kohya's two spellings, from the Train node's bucket list (`["512x512", …]`):
 * ss_resolution as sd-scripts writes its resolution tuple, `(512, 512)`, and modelspec's `512x512`. kohya's
 * resolution is the base one; with several buckets the largest area stands for it.
 */
function resolutionOf(t: TrainingValue): { kohya: string; modelspec: string } | undefined {
  const text = t.metadata.ss_resolution ?? '';
  let sizes: unknown = [];
  try { sizes = JSON.parse(text); } catch { sizes = [text]; }
  // Bucket sizes (`64x64`) or an already-kohya `(64, 64)`.
  const parsed = (Array.isArray(sizes) ? sizes : []).map((x) => /^\(?(\d+)(?:x|, )(\d+)\)?$/.exec(String(x))).filter((m): m is RegExpExecArray => !!m).map((m) => [Number(m[1]), Number(m[2])]);
  const sample = (t.base.config as { sampleSize?: number } | undefined)?.sampleSize;
  if (!parsed.length && sample) parsed.push([sample, sample]);
  if (!parsed.length) return undefined;
  const [w, h] = parsed.reduce((a, b) => (b[0] * b[1] > a[0] * a[1] ? b : a));
  return { kohya: `(${w}, ${h})`, modelspec: `${w}x${h}` };
}

/**
 * How the file's scale is meant, stated so no tool applies alpha twice. kohya files carry an `.alpha`
 * tensor per module and every loader (ComfyUI, A1111/Forge, diffusers) scales by alpha / dim; diffusers
 * files carry none, with alpha folded into `up`, so their scale is 1 — diffusers' rule for such files is
 * alpha = rank — and ss_network_alpha / conv_alpha say exactly that (alpha = dim).
 */
function alphaFacts(spec: AdapterSpec, format: LoraFormat) {
  const folded = format !== 'kohya';
  const alpha = folded ? spec.rank : spec.alpha || spec.rank;
  const convAlpha = folded ? spec.convRank : spec.convAlpha;
  const note = folded
    ? `folded into the up weights (trained with alpha ${spec.alpha || spec.rank} over dim ${spec.rank}${spec.algo === 'LoCon' ? `, conv alpha ${spec.convAlpha} over ${spec.convRank}` : ''}); apply at scale 1 (alpha = dim)`
    : 'per-module .alpha tensors; scale = alpha / dim';
  return { alpha, convAlpha, note };
}

/**
 * modelspec.implementation as sd-scripts' determine_implementation gives it for a LoRA: SDXL LoRAs name
 * Stability's generative-models, FLUX ones BFL's repository, SD 1.x/2.x LoRAs diffusers.
 */
export function modelspecImplementation(architecture: string): string {
  if (architecture.startsWith('stable-diffusion-xl')) return 'https://github.com/Stability-AI/generative-models';
  // musubi-tuner names FLUX.2 `Flux.2-…` with BFL's flux2 repository.
  if (/^flux\.2/i.test(architecture)) return 'https://github.com/black-forest-labs/flux2';
  if (architecture.startsWith('flux')) return 'https://github.com/black-forest-labs/flux';
  // musubi-tuner names every Wan `wan2.1` with Wan-Video's Wan2.1 repository.
  if (architecture.startsWith('wan')) return 'https://github.com/Wan-Video/Wan2.1';
  return 'diffusers';
}

export function loraMetadata(o: LoraMetadataInput): Record<string, string> {
  const { training: t, spec } = o;
  const now = o.now ?? new Date();
  const family = familyById(t.base.family);
  const hasConv = spec.algo !== 'LoRA' || spec.preset === 'all_linear_conv';
  const a = alphaFacts(spec, o.format);
  const args: Record<string, unknown> = {};
  if (spec.algo === 'LoKr') Object.assign(args, { algo: 'lokr', factor: spec.factor, ...(spec.fullMatrix ? { full_matrix: true } : {}) });
  if (hasConv) Object.assign(args, { conv_dim: spec.convRank, conv_alpha: a.convAlpha });
  if (spec.dropout > 0) args.dropout = spec.dropout;
  const objective = t.base.config !== undefined ? family.objective(t.base.config) : undefined;
  const resolution = resolutionOf(t);
  const architecture = (t.base.config !== undefined ? family.modelspecArchitectureOf?.(t.base.config) : undefined) ?? family.modelspecArchitecture;
  const base: Record<string, string> = {
    ss_output_name: o.name,
    ss_sd_model_name: t.base.label,
    ss_base_model_version: family.baseModelVersion,
    ss_v2: 'False',
    ss_optimizer: t.optimizerName,
    ss_steps: String(t.step),
    ss_training_finished_at: String(Math.floor(now.getTime() / 1000)),
  };
  // sd-scripts (library/sai_model_spec.py): every network it trains — LyCORIS LoKr included — is
  // `<arch>/lora`; the date is an ISO date-time; flow-matching models get no prediction_type.
  const modelspec: Record<string, string> = {
    'modelspec.sai_model_spec': '1.0.1',
    'modelspec.architecture': `${architecture}/lora`,
    'modelspec.implementation': modelspecImplementation(architecture),
    'modelspec.implementation_version': 'loragraph',
    'modelspec.title': o.name,
    'modelspec.date': now.toISOString().slice(0, 19),
    ...(objective?.kind === 'flow' ? {} : { 'modelspec.prediction_type': objective?.prediction === 'v_prediction' ? 'v' : 'epsilon' }),
    ...(resolution ? { 'modelspec.resolution': resolution.modelspec } : {}),
    ...(t.metadata.ss_clip_skip ? { 'modelspec.encoder_layer': t.metadata.ss_clip_skip } : {}),
  };
  // What the file's tensors are wins over anything the Train node recorded.
  const network: Record<string, string> = {
    ss_network_module: spec.algo === 'LoKr' ? 'lycoris.kohya' : 'networks.lora',
    ss_network_dim: String(spec.rank),
    ss_network_alpha: String(a.alpha),
    ss_network_args: JSON.stringify(Object.fromEntries(Object.entries(args).map(([k, v]) => [k, String(v)]))),
    ss_network_train_unet_only: spec.trainTextEncoder ? 'False' : 'True',
    ...(spec.dropout > 0 ? { ss_network_dropout: String(spec.dropout) } : {}),
    ...(resolution ? { ss_resolution: resolution.kohya } : {}),
    ...(t.metadata.ss_resolution?.startsWith('[') ? { loragraph_buckets: t.metadata.ss_resolution } : {}),
    loragraph_format: o.format,
    loragraph_alpha: a.note,
    loragraph_ema: o.usedEma ? 'True' : 'False',
    loragraph_base_model_id: t.base.id,
    ...(o.workflow !== undefined ? { loragraph_workflow: JSON.stringify(o.workflow) } : {}),
  };
  return { ...base, ...modelspec, ...t.metadata, ...network };
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

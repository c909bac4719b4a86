// ai-toolkit job files (`job: extension` with `config.process[]`, and the older `job: train` layout) → the graph.
// The table below is the whole mapping: each ai-toolkit key (as toolkit/config_modules.py reads it) → the node
// widget it sets, the conversion, and what changes in meaning. The report and the export read the same table.
import type { NodeRegistry } from '../../nodes/registry';
import type { ProjectPaths } from '../paths';
import { AI_TOOLKIT_FLAGS, familyFromArch, isTransformerFamily, type FamilyInfo } from './families';
import { toProjectPath } from './paths';
import { Plan, label } from './plan';
import { ReportBuilder } from './report';
import { applyKey, isUnset, UnsupportedValue, type Rule, type RuleContext } from './rules';
import type { WidgetRef } from './plan';
import { ConfigImportError, joinPath, leaves, type ParsedSource } from './source';

export const AI_TOOLKIT_OPTIMIZERS: Record<string, [string, string?]> = {
  adamw: ['AdamW'],
  adamw8bit: ['AdamW8bit'],
  adam8bit: ['AdamW8bit', 'Adam 8-bit without decoupled weight decay → AdamW8bit'],
  adamw8: ['AdamW8bit'],
  adam: ['AdamW', 'Adam → AdamW (decoupled weight decay; set weightDecay 0 for plain Adam)'],
  adafactor: ['Adafactor'],
  lion: ['Lion'],
  lion8bit: ['Lion', 'Lion 8-bit → Lion (full-precision state)'],
  prodigy: ['Prodigy'],
  prodigy8bit: ['Prodigy', 'Prodigy 8-bit → Prodigy (full-precision state)'],
  sgd: ['SGD'],
};

const SAVE_DTYPES: Record<string, string> = { float16: 'fp16', fp16: 'fp16', half: 'fp16', bfloat16: 'bf16', bf16: 'bf16', float32: 'fp32', fp32: 'fp32', float: 'fp32' };
const SAMPLERS: Record<string, [string, string?]> = {
  euler: ['euler'], euler_a: ['euler_ancestral'], ddim: ['ddim'],
  ddpm: ['euler_ancestral', 'DDPM → Euler ancestral (also stochastic, fewer steps needed)'],
  flowmatch: ['euler', 'flow-matching Euler → euler (the family decides the schedule)'],
  dpmsolver: ['dpmpp_2m', 'DPM-Solver → DPM++ 2M'], 'dpmsolver++': ['dpmpp_2m', 'DPM-Solver++ → DPM++ 2M'],
  lms: ['euler', 'LMS → euler'], k_lms: ['euler', 'LMS → euler'],
};
const QTYPES: Record<string, [string, string?]> = {
  qfloat8: ['fp8', 'optimum-quanto qfloat8 → fp8 e4m3'], float8: ['fp8'], fp8: ['fp8'],
  qint8: ['int8'], uint8: ['int8', 'uint8 → int8 (per channel, symmetric)'], int8: ['int8'],
  qint4: ['int4'], uint4: ['int4', 'uint4 → int4 (blockwise)'], int4: ['int4'], nf4: ['nf4'],
};
const TIMESTEP_TYPES: Record<string, string> = { sigmoid: 'sigmoid', linear: 'linear', lognorm_blend: 'lognorm_blend', weighted: 'weighted', shift: 'shift' };
const BIAS: Record<string, string> = { balanced: 'balanced', content: 'high_noise', style: 'low_noise' };
const LOSSES: Record<string, [string, string?]> = { mse: ['mse'], mae: ['l1'], l1: ['l1'], pseudo_huber: ['pseudo_huber'], huber: ['huber'] };

function pick<T extends [string, string?]>(table: Record<string, T>, value: unknown, what: string): T {
  const hit = table[String(value).toLowerCase()];
  if (!hit) throw new UnsupportedValue(`${what} "${value}" has no counterpart (loragraph has ${[...new Set(Object.values(table).map((t) => t[0]))].join(', ')})`);
  return hit;
}

/** Keys relative to a process entry of `config.process[]`; dataset keys relative to one `datasets[]` entry. */
export const PROCESS_RULES: Rule[] = [
  { key: 'type', status: 'ignored', note: (v) => (v === 'sd_trainer' || v === 'ui_trainer' ? 'the trainer process: this graph' : `process type ${v}`) },
  { key: 'training_folder', status: 'ignored', note: 'loragraph writes to the data folder\'s output/' },
  { key: 'device', status: 'ignored', note: 'the execution provider is LORAGRAPH_EP' },
  { key: 'performance_log_every', status: 'ignored', note: 'a logging setting' },
  { key: 'log_dir', status: 'ignored', note: 'a logging setting' },
  { key: 'logging.*', status: 'ignored', note: 'a logging setting (loss shows on the Train node and Loss Graph)' },
  {
    key: 'trigger_word',
    apply: (v, c) => ({ targets: c.plan.datasets.flatMap((d, i) => (d.isRegularization || d.triggerWord ? [] : [c.plan.set('dataset.triggerWord', v, i)])) }),
    note: 'on every training (not regularization) dataset without its own trigger_word',
  },
  {
    key: 'network.type',
    apply: (v, c) => {
      const type = String(v).toLowerCase();
      if (type === 'lora' && c.scope.conv) return { targets: c.set('target.networkType', 'LoCon'), note: 'lora with conv set also trains the 3×3 convs: LoCon' };
      const map: Record<string, string> = { lora: 'LoRA', locon: 'LoCon', lokr: 'LoKr' };
      if (!map[type]) throw new UnsupportedValue(`network type "${v}" has no counterpart (loragraph has LoRA, LoCon, LoKr); the graph trains a LoRA`);
      return { targets: c.set('target.networkType', map[type]) };
    },
  },
  { key: 'network.linear', to: 'target.rank' },
  { key: 'network.rank', to: 'target.rank' },
  { key: 'network.linear_alpha', apply: (v, c) => alphaOutcome(v, c) },
  { key: 'network.alpha', apply: (v, c) => (c.scope.linear_alpha !== undefined ? { status: 'ignored', note: 'linear_alpha takes precedence' } : alphaOutcome(v, c)) },
  { key: 'network.conv', to: 'target.convRank' },
  { key: 'network.conv_alpha', to: 'target.convAlpha' },
  { key: 'network.dropout', convert: (v) => v ?? 0, to: 'target.dropout' },
  { key: 'network.lokr_factor', to: 'target.lokrFactor' },
  { key: 'network.lokr_full_rank', to: 'target.lokrFullMatrix' },
  { key: 'network.transformer_only', status: 'ignored', note: 'LoRA Target\'s modules are the denoiser\'s own (targetPreset, include/exclude)', default: true },
  { key: 'network.network_kwargs.only_if_contains', to: 'target.include', status: 'changed', convert: (v: string[]) => v.map((s) => `*${s}*`).join('\n'), note: 'substrings → globs *…*; module names follow loragraph\'s (kohya) naming' },
  { key: 'network.network_kwargs.ignore_if_contains', to: 'target.exclude', status: 'changed', convert: (v: string[]) => v.map((s) => `*${s}*`).join('\n'), note: 'substrings → globs *…*; module names follow loragraph\'s (kohya) naming' },
  { key: 'save.dtype', to: 'save.dtype', convert: (v) => pick(Object.fromEntries(Object.entries(SAVE_DTYPES).map(([k, d]) => [k, [d] as [string]])), v, 'save dtype')[0] },
  { key: 'save.save_every', to: 'train.saveEvery' },
  { key: 'save.max_step_saves_to_keep', to: 'train.maxSavesToKeep' },
  { key: 'save.save_format', status: 'unsupported', default: 'safetensors', note: 'loragraph saves .safetensors LoRA files' },
  { key: 'save.push_to_hub', status: 'unsupported', note: 'loragraph uploads nothing' },
  { key: 'save.hf_repo_id', status: 'unsupported', note: 'loragraph uploads nothing' },
  { key: 'save.hf_private', status: 'unsupported', note: 'loragraph uploads nothing' },
  { key: 'train.steps', to: 'train.steps' },
  { key: 'train.batch_size', to: 'train.batchSize' },
  { key: 'train.gradient_accumulation', to: 'train.gradientAccumulation' },
  {
    key: 'train.gradient_accumulation_steps', to: 'train.gradientAccumulation',
    status: 'mapped', note: (v) => (v > 1 ? 'ai-toolkit counts each micro-batch as a step here; Train.steps counts optimizer steps' : undefined),
  },
  { key: 'train.train_unet', status: 'unsupported', default: true, note: 'the denoiser always trains' },
  { key: 'train.train_text_encoder', to: 'target.trainTextEncoder' },
  { key: 'train.gradient_checkpointing', status: 'ignored', note: 'a memory setting loragraph decides' },
  { key: 'train.noise_scheduler', status: 'ignored', note: 'the model family decides the training objective' },
  { key: 'train.dtype', status: 'ignored', note: 'adapters train in float32; frozen weights as Quantize says' },
  { key: 'train.xformers', status: 'ignored', note: 'an attention backend setting' },
  { key: 'train.sdp', status: 'ignored', note: 'an attention backend setting' },
  { key: 'train.attention_backend', status: 'ignored', note: 'an attention backend setting' },
  {
    key: 'train.optimizer',
    apply: (v, c) => {
      const [name, note] = pick(AI_TOOLKIT_OPTIMIZERS, v, 'optimizer');
      return { targets: c.set('optimizer.optimizer', name), ...(note ? { status: 'changed' as const, note } : {}) };
    },
  },
  { key: 'train.lr', apply: (v, c) => (c.scope.unet_lr !== undefined ? { status: 'ignored', note: 'unet_lr takes precedence' } : { targets: c.set('optimizer.learningRate', Number(v)) }) },
  { key: 'train.unet_lr', to: 'optimizer.learningRate', convert: Number },
  { key: 'train.text_encoder_lr', to: 'optimizer.textEncoderLr', convert: Number },
  { key: 'train.optimizer_params.weight_decay', to: 'optimizer.weightDecay', convert: Number },
  { key: 'train.optimizer_params.eps', to: 'optimizer.eps', convert: Number },
  { key: 'train.optimizer_params.betas', apply: (v: number[], c) => ({ targets: [...c.set('optimizer.beta1', Number(v[0])), ...c.set('optimizer.beta2', Number(v[1]))] }) },
  { key: 'train.optimizer_params.relative_step', to: 'optimizer.relativeStep' },
  {
    // ai-toolkit builds torch schedulers over the whole run (toolkit/scheduler.py): cosine = CosineAnnealingLR,
    // cosine_with_restarts = CosineAnnealingWarmRestarts with T_0 = steps (one wave), linear = LinearLR (a ramp up).
    key: 'train.lr_scheduler',
    apply: (v, c) => {
      const name = String(v);
      if (!['constant', 'constant_with_warmup', 'cosine', 'cosine_with_restarts', 'linear'].includes(name)) throw new UnsupportedValue(`lr_scheduler "${v}" has no counterpart (constant, constant_with_warmup, cosine, cosine_with_restarts, linear)`);
      const targets = c.set('optimizer.lrScheduler', name);
      return name === 'linear'
        ? { status: 'changed', targets, note: 'ai-toolkit\'s linear is torch LinearLR: the lr ramps up from ⅓ to full; Optimizer\'s linear decays to 0' }
        : { targets };
    },
  },
  {
    key: 'train.lr_scheduler_params.num_warmup_steps',
    apply: (v, c) => (c.scope.lr_scheduler === 'constant_with_warmup'
      ? { targets: c.set('optimizer.warmupSteps', Number(v)) }
      : { status: 'unsupported', note: `ai-toolkit hands it to torch's ${c.scope.lr_scheduler ?? 'constant'} scheduler, which has no warmup` }),
  },
  { key: 'train.max_grad_norm', to: 'optimizer.maxGradNorm' },
  { key: 'train.min_snr_gamma', to: 'train.minSnrGamma', convert: (v) => v ?? 0 },
  { key: 'train.snr_gamma', to: 'train.minSnrGamma', status: 'changed', note: 'ai-toolkit\'s snr_gamma (SNR-weighted) → min-SNR-γ' },
  { key: 'train.noise_offset', to: 'train.noiseOffset' },
  { key: 'train.loss_type', apply: (v, c) => { const [l, note] = pick(LOSSES, v, 'loss_type'); return { targets: c.set('train.lossType', l), ...(note ? { note } : {}) }; } },
  { key: 'train.timestep_type', to: 'schedule.timestepType', convert: (v) => { if (!TIMESTEP_TYPES[v]) throw new UnsupportedValue(`timestep_type "${v}" has no counterpart (loragraph has ${Object.keys(TIMESTEP_TYPES).join(', ')})`); return TIMESTEP_TYPES[v]; } },
  // ai-toolkit's older loss weightings over uniform timesteps (toolkit/samplers/custom_flowmatch_sampler.py): a bell
  // exp(−2(t − ½)²) shifted to 0 at the ends and scaled to mean 1; linear_timesteps2 holds its low-noise half at the peak.
  { key: 'train.linear_timesteps', status: 'unsupported', default: false, note: 'its bell-shaped loss weight has no counterpart; timestep_type weighted is ai-toolkit\'s current weighting' },
  { key: 'train.linear_timesteps2', status: 'unsupported', default: false, note: 'its half-bell loss weight has no counterpart; timestep_type weighted is ai-toolkit\'s current weighting' },
  { key: 'train.content_or_style', to: 'schedule.timestepBias', convert: (v) => BIAS[v] ?? (() => { throw new UnsupportedValue(`content_or_style "${v}"`); })(), note: 'content → high_noise, style → low_noise' },
  { key: 'train.min_denoising_steps', to: 'schedule.minTimestep' },
  { key: 'train.max_denoising_steps', to: 'schedule.maxTimestep', convert: (v: number) => Math.min(1000, v + 1), note: 'ai-toolkit\'s last timestep (inclusive) → maxTimestep (exclusive)' },
  { key: 'train.ema_config.use_ema', to: 'train.ema' },
  { key: 'train.ema_config.ema_decay', to: 'train.emaDecay' },
  { key: 'train.cache_text_embeddings', to: 'train.cacheTextEmbeddings' },
  { key: 'train.reg_weight', to: 'train.priorLossWeight', note: 'weight of the regularization (is_reg) datasets\' loss' },
  { key: 'train.skip_first_sample', status: 'ignored', note: 'loragraph does not sample before the first step' },
  { key: 'train.disable_sampling', apply: (v, c) => (v ? (c.plan.roles.delete('sampler'), { targets: ['(no Sampler Settings node)'] }) : { status: 'ignored', note: 'unset' }) },
  { key: 'train.diff_output_preservation', apply: (v, c) => (v ? (c.plan.use('dop'), { targets: ['DOP'] }) : { status: 'ignored', note: 'DOP off' }) },
  { key: 'train.diff_output_preservation_multiplier', apply: (v, c) => (c.scope.diff_output_preservation ? { targets: c.set('dop.lossMultiplier', v) } : { status: 'ignored', note: 'DOP is off' }) },
  { key: 'train.diff_output_preservation_class', apply: (v, c) => (c.scope.diff_output_preservation ? { targets: c.set('dop.preservationClass', v) } : { status: 'ignored', note: 'DOP is off' }) },
  { key: 'train.blank_prompt_preservation', apply: (v, c) => (v ? (c.plan.use('dop'), { targets: c.set('dop.blankPromptPreservation', true) }) : { status: 'ignored', note: 'unset' }) },
  { key: 'train.do_differential_guidance', apply: (v, c) => (v ? (c.plan.use('dop'), { targets: c.set('dop.differentialGuidance', true) }) : { status: 'ignored', note: 'unset' }) },
  { key: 'train.differential_guidance_scale', to: 'dop.differentialGuidanceScale' },
  {
    key: 'train.switch_boundary_every',
    apply: (v, c) => (c.plan.has('lowModel')
      ? { targets: c.set('train.switchEvery', v), note: 'steps on one expert before switching to the other' }
      : { targets: c.set('schedule.switchEvery', v), note: 'steps on one Timestep Schedule multistage band before switching' }),
  },
  {
    key: 'model.name_or_path',
    apply: (v, c) => {
      const m = toProjectPath(String(v), 'models', (c as AiContext).paths?.models);
      const targets = c.set('model.checkpoint', m.value);
      // Two experts: the low-noise one as ai-toolkit finds it (a diffusers folder's transformer_2/), or ComfyUI's file with high_noise → low_noise.
      const low = c.plan.has('lowModel') ? lowNoiseCheckpoint(m.value) : undefined;
      if (low) for (const [widget, value] of Object.entries(low.widgets)) targets.push(c.plan.set(`lowModel.${widget}` as WidgetRef, value));
      const notes = [m.changed ? m.note : undefined, low?.note].filter(Boolean).join('; ');
      return { targets, ...(m.changed ? { status: 'changed' as const } : {}), ...(notes ? { note: notes } : {}) };
    },
  },
  { key: 'model.arch', apply: (_v, c) => familyOutcome(c) },
  ...AI_TOOLKIT_FLAGS.map(([flag]): Rule => ({ key: `model.${flag}`, apply: (v, c) => (v ? familyOutcome(c) : { status: 'ignored', note: 'unset' }) })),
  {
    key: 'model.quantize',
    apply: (v, c) => {
      if (!v) return { status: 'ignored', note: 'unset' };
      const [scheme, note] = pick(QTYPES, String(c.scope.qtype ?? 'qfloat8').split('|')[0], 'qtype');
      return { targets: c.set('quantize.unet', scheme), ...(note ? { note } : {}) };
    },
  },
  {
    key: 'model.qtype',
    apply: (v, c) => {
      if (!c.scope.quantize) return { status: 'ignored', note: 'quantize is off' };
      const [base, adapter] = String(v).split('|');
      const [scheme] = pick(QTYPES, base, 'qtype');
      return adapter
        ? { status: 'changed', targets: [label('quantize.unet')], note: `quantised as ${scheme}; the accuracy-recovery adapter ${adapter} is not applied` }
        : { targets: [label('quantize.unet')], note: `read with quantize: ${scheme}` };
    },
  },
  {
    key: 'model.quantize_te',
    apply: (v, c) => {
      if (!v) return c.scope.quantize ? { targets: c.set('quantize.textEncoder', 'none') } : { status: 'ignored', note: 'unset' };
      const [scheme, note] = pick(QTYPES, String(c.scope.qtype_te ?? 'qfloat8'), 'qtype_te');
      c.plan.use('quantize');
      return { targets: c.set('quantize.textEncoder', scheme), ...(note ? { note } : {}) };
    },
  },
  { key: 'model.qtype_te', apply: (_v, c) => (c.scope.quantize_te ?? c.scope.quantize ? { targets: [label('quantize.textEncoder')], note: 'read with quantize_te' } : { status: 'ignored', note: 'quantize_te is off' }) },
  { key: 'model.low_vram', status: 'ignored', note: 'a memory setting loragraph decides' },
  { key: 'model.dtype', status: 'ignored', note: 'frozen weights load in their stored precision unless quantised' },
  { key: 'model.model_kwargs.train_high_noise', apply: (_v, c) => trainStagesOutcome(c) },
  { key: 'model.model_kwargs.train_low_noise', apply: (_v, c) => trainStagesOutcome(c) },
  { key: 'sample.sampler', apply: (v, c) => { const [s, note] = pick(SAMPLERS, v, 'sampler'); return { targets: c.set('sampler.sampler', s), ...(note ? { status: 'changed' as const, note } : {}) }; } },
  { key: 'sample.sample_every', to: 'train.sampleEvery' },
  { key: 'sample.sample_start_step', status: 'unsupported', default: 0 },
  { key: 'sample.width', to: 'sampler.width' },
  { key: 'sample.height', to: 'sampler.height' },
  { key: 'sample.prompts', apply: (v: unknown[], c) => promptsOutcome(v.map(String), c) },
  { key: 'sample.samples[].prompt', apply: (_v, c) => promptsOutcome((Array.isArray(c.scope.samples) ? c.scope.samples : []).map((s) => String(obj(s).prompt ?? '')), c) },
  { key: 'sample.neg', to: 'sampler.negativePrompt', convert: (v) => (v === false || v == null ? '' : String(v)) },
  { key: 'sample.seed', to: 'sampler.seed' },
  { key: 'sample.walk_seed', to: 'sampler.walkSeed' },
  { key: 'sample.guidance_scale', to: 'sampler.cfg' },
  { key: 'sample.sample_steps', to: 'sampler.steps' },
  { key: 'sample.network_multiplier', to: 'sampler.loraStrength' },
  { key: 'sample.num_frames', to: 'sampler.numFrames', note: 'video models: frames of each sample clip (1 = a still image)' },
  { key: 'sample.fps', to: 'sampler.fps' },
  { key: 'sample.format', status: 'ignored', note: 'samples are PNG, clips animated WebP' },
  { key: 'sample.guidance_rescale', status: 'unsupported', default: 0 },
];

export const DATASET_RULES: Rule[] = [
  {
    key: 'folder_path',
    apply: (v, c) => {
      const m = toProjectPath(String(v), 'datasets', (c as AiContext).paths?.datasets);
      return { targets: c.set('dataset.folder', m.value), ...(m.changed ? { status: 'changed' as const, note: m.note } : {}) };
    },
  },
  { key: 'caption_ext', to: 'dataset.captionExtension', convert: (v) => (String(v).startsWith('.') ? String(v) : `.${v}`) },
  { key: 'default_caption', to: 'dataset.defaultCaption' },
  { key: 'trigger_word', to: 'dataset.triggerWord' },
  { key: 'caption_dropout_rate', to: 'dataset.captionDropoutRate', convert: Number },
  { key: 'token_dropout_rate', to: 'dataset.tokenDropoutRate', convert: Number },
  { key: 'shuffle_tokens', to: 'dataset.shuffleTags' },
  { key: 'keep_tokens', to: 'dataset.keepTokens' },
  { key: 'num_repeats', to: 'dataset.repeats' },
  { key: 'flip_x', to: 'dataset.flipX' },
  { key: 'flip_y', to: 'dataset.flipY' },
  { key: 'is_reg', to: 'dataset.isRegularization' },
  { key: 'num_frames', to: 'dataset.numFrames' },
  { key: 'do_i2v', to: 'dataset.imageToVideo' },
  { key: 'bucket_tolerance', to: 'dataset.bucketStep' },
  { key: 'buckets', status: 'unsupported', default: true, note: 'Dataset always buckets by aspect ratio' },
  {
    key: 'resolution',
    apply: (v, c) => {
      const sizes = Array.isArray(v) ? v : [v];
      const targets = c.datasets.map((node, k) => c.plan.set('dataset.resolution', String(sizes[k]), node));
      return Array.isArray(v) && v.length > 1
        ? { targets, note: 'ai-toolkit trains every image at each size: one Dataset node per size' }
        : { targets };
    },
  },
  { key: 'cache_latents', status: 'ignored', note: 'Train.cacheLatents caches latents (on by default)' },
  { key: 'cache_latents_to_disk', status: 'ignored', note: 'Train.cacheLatents caches latents (on by default)' },
  { key: 'network_weight', status: 'unsupported', default: 1 },
  { key: 'loss_multiplier', status: 'unsupported', default: 1 },
];

interface AiContext extends RuleContext {
  paths?: ProjectPaths;
}

function alphaOutcome(v: unknown, c: RuleContext) {
  if (isTransformerFamily(c.family.id)) {
    const rank = Number(c.scope.linear ?? c.scope.rank ?? 4);
    return { status: 'changed' as const, targets: c.set('target.alpha', rank), note: `ai-toolkit ignores linear_alpha for ${c.family.label} (a transformer) and trains at alpha = rank (${rank}, scale 1)` };
  }
  return { targets: c.set('target.alpha', Number(v)) };
}

/** Train.trainStages from ai-toolkit's pair of switches (both default true; at least one must be). */
function trainStagesOutcome(c: RuleContext) {
  if (!c.plan.has('lowModel')) return { status: 'ignored' as const, note: 'only Wan 2.2 14B has two experts' };
  const kwargs = obj(c.scope.model_kwargs); // the rule's scope is the model section
  const high = kwargs.train_high_noise !== false, low = kwargs.train_low_noise !== false;
  if (!high && !low) throw new UnsupportedValue('train_high_noise and train_low_noise are both false: at least one expert must train (ai-toolkit refuses this too)');
  return { targets: c.set('train.trainStages', high && low ? 'both' : high ? 'high_noise' : 'low_noise'), note: 'which experts train (the other keeps its LoRA as it is)' };
}

/**
 * The low-noise expert's Load Model widgets for the high-noise expert's checkpoint: ComfyUI's
 * `…high_noise….safetensors` → the same name with low_noise; a diffusers folder → its transformer_2/
 * with the folder's text_encoder/ and vae/ (ai-toolkit loads the second expert from there).
 */
export function lowNoiseCheckpoint(checkpoint: string): { widgets: Record<string, string>; note: string } {
  const swapped = checkpoint.replace(/high([_-]?)noise(?!.*\/)/i, (_m, sep: string) => `low${sep}noise`);
  if (/\.safetensors$/i.test(checkpoint)) {
    return swapped !== checkpoint
      ? { widgets: { checkpoint: swapped }, note: `the low-noise expert: ${swapped}` }
      : { widgets: { checkpoint }, note: 'the file name does not say high_noise: set Load Model (low noise).checkpoint to the low-noise expert\'s file' };
  }
  const dir = checkpoint.replace(/\/+$/, '');
  return { widgets: { checkpoint: `${dir}/transformer_2`, textEncoder: `${dir}/text_encoder`, vae: `${dir}/vae` }, note: `the low-noise expert: ${dir}/transformer_2 (diffusers' second transformer)` };
}

function familyOutcome(c: RuleContext) {
  return {
    status: c.family.trainable ? 'mapped' as const : 'unsupported' as const,
    targets: c.family.trainable ? [`${label('model.checkpoint')} (family)`] : [],
    note: c.family.trainable ? c.family.label : `${c.family.label}: loragraph cannot train this family yet`,
  };
}

function promptsOutcome(prompts: string[], c: RuleContext) {
  const trigger = (c as AiContext & { trigger?: string }).trigger;
  const withTrigger = prompts.map((p) => (trigger ? p.replaceAll('[trigger]', trigger) : p));
  const replaced = withTrigger.some((p, i) => p !== prompts[i]);
  return { targets: c.set('sampler.prompts', withTrigger.join('\n')), ...(replaced ? { note: `[trigger] → ${trigger}` } : {}) };
}

/** ai-toolkit replaces `[name]` everywhere (keys and values) with config.name after loading. */
function replaceName(v: unknown, name: string): unknown {
  if (typeof v === 'string') return v.replaceAll('[name]', name);
  if (Array.isArray(v)) return v.map((x) => replaceName(x, name));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k.replaceAll('[name]', name), replaceName(x, name)]));
  return v;
}

const TRAINER_TYPES = new Set(['sd_trainer', 'ui_trainer']);

export function isAiToolkit(data: unknown): boolean {
  return !!data && typeof data === 'object' && 'job' in data && 'config' in data;
}

export async function aiToolkitFamily(model: Record<string, unknown> | undefined): Promise<FamilyInfo> {
  if (typeof model?.arch === 'string') return familyFromArch(model.arch, `model.arch: ${model.arch}`);
  for (const [flag, arch] of AI_TOOLKIT_FLAGS) if (model?.[flag]) return familyFromArch(arch, `model.${flag}`);
  return familyFromArch('sd1', 'no arch or is_* flag: ai-toolkit\'s default');
}

const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

export async function importAiToolkit(source: ParsedSource, registry: NodeRegistry, opts: { paths?: ProjectPaths } = {}) {
  const root = obj(source.data);
  const fail = (key: string, message: string) => { throw new ConfigImportError(source.file, message, source.lineOf(key), undefined, key); };
  const job = root.job;
  if (job !== 'extension' && job !== 'train') fail('job', `ai-toolkit job "${String(job)}": loragraph imports training jobs ("extension" with an sd_trainer process, or the older "train")`);
  const config = obj(root.config);
  const name = config.name;
  if (typeof name !== 'string' || !name) fail('config.name', 'ai-toolkit needs config.name (the LoRA\'s name)');
  const data = replaceName(root, name as string) as Record<string, unknown>;
  const processes = Array.isArray(obj(data.config).process) ? (obj(data.config).process as unknown[]) : [];
  if (!processes.length) fail('config.process', 'config.process must list at least one process');
  const trainerIndex = processes.findIndex((p) => TRAINER_TYPES.has(String(obj(p).type)) || job === 'train');
  if (trainerIndex < 0) fail('config.process', `no training process (type ${[...TRAINER_TYPES].join(' or ')}) in config.process`);
  const proc = obj(processes[trainerIndex]);
  const family = await aiToolkitFamily(obj(proc.model));

  const report = new ReportBuilder(source.lineOf);
  const plan = new Plan(registry);
  // ai-toolkit's own defaults where they differ from the nodes' (toolkit/config_modules.py).
  const transformer = isTransformerFamily(family.id);
  plan.set('model.checkpoint', 'builtin:tiny');
  plan.set('optimizer.optimizer', 'AdamW');
  plan.set('optimizer.learningRate', 1e-6);
  plan.set('target.networkType', 'LoRA');
  plan.set('target.rank', 4);
  plan.set('target.alpha', transformer ? Number(obj(proc.network).linear ?? obj(proc.network).rank ?? 4) : 1);
  plan.set('target.targetPreset', 'all_linear');
  if (String(obj(proc.network).type).toLowerCase() === 'lokr') plan.set('target.lokrFullMatrix', true);
  if (obj(proc.network).conv !== undefined) plan.set('target.convAlpha', Number(obj(proc.network).conv_alpha ?? obj(proc.network).conv));
  plan.set('train.steps', 1000);
  plan.set('train.saveEvery', 1000);
  plan.set('train.maxSavesToKeep', 5);
  plan.set('train.saveName', name);
  plan.set('schedule.timestepType', 'sigmoid');
  plan.set('schedule.maxTimestep', 1000);
  if (/wan22_14b/.test(String(obj(proc.model).arch))) {
    // Wan 2.2 14B is two experts: a second Load Model for the low-noise one, trained in turn by Train (multistage);
    // the boundary stays Train's 0 = the model's official one (0.875 text-to-video, 0.9 image-to-video).
    plan.use('lowModel');
    plan.set('train.trainStages', 'both');
    plan.set('train.switchEvery', 1); // ai-toolkit's default switch_boundary_every
    report.notes.push(`${family.label}: two experts — Load Model (low noise) feeds Train's lowNoiseModel; Train switches between them every switchEvery steps`);
  }
  plan.set('save.name', name);
  plan.set('save.fileName', '{name}/{name}');
  plan.set('save.dtype', 'fp16');
  if (proc.sample && !obj(proc.train).disable_sampling) {
    plan.set('sampler.sampler', 'euler_ancestral');
    plan.set('sampler.width', 512);
    plan.set('sampler.height', 512);
    plan.set('sampler.seed', 0);
    plan.set('sampler.cfg', 7);
    plan.set('sampler.steps', 20);
    plan.set('sampler.prompts', '');
    plan.set('train.sampleEvery', 100);
  }
  plan.use('loss');
  if (obj(proc.train).lr_scheduler === 'constant_with_warmup') plan.set('optimizer.warmupSteps', 1000); // ai-toolkit's default

  // Datasets: one Dataset node per (dataset, resolution), as ai-toolkit splits a resolution list.
  const datasets = Array.isArray(proc.datasets) ? proc.datasets.map(obj) : [];
  const nodesOf: number[][] = [];
  let next = 0;
  for (const d of datasets) {
    const sizes = Array.isArray(d.resolution) ? d.resolution : [d.resolution ?? 512];
    const nodes = sizes.map(() => next++);
    nodesOf.push(nodes);
    for (const n of nodes) {
      plan.dataset(n);
      plan.set('dataset.resolution', String(sizes[0]), n);
      plan.set('dataset.captionExtension', '.txt', n);
      if (family.id === 'wan') plan.set('dataset.videoModel', true, n);
      if (d.is_reg) plan.set('dataset.isRegularization', true, n);
    }
  }
  if (!datasets.length) report.notes.push('no datasets: add a Dataset node before running');
  if (!obj(proc.model).name_or_path) report.notes.push('no model.name_or_path: Load Model points at the built-in tiny model; set its checkpoint');
  // The arch names the family: Load Model loads the checkpoint as it, and `loragraph export` writes it back.
  else if (family.trainable && family.id !== 'sd1') {
    plan.set('model.family', family.id);
    if (plan.has('lowModel')) plan.set('lowModel.family', family.id);
  }
  if (plan.has('lowModel') && !obj(proc.model).name_or_path) report.notes.push('two experts: set Load Model (low noise).checkpoint to the low-noise expert');

  const processKey = `config.process[${trainerIndex}]`;
  const trigger = typeof proc.trigger_word === 'string' ? proc.trigger_word : undefined;
  for (const [key, value] of leaves(data)) {
    const base = { plan, family, paths: opts.paths, trigger } as const;
    if (key.startsWith(`${processKey}.sample.`) && obj(proc.train).disable_sampling) {
      report.add(key, value, 'ignored', [], 'sampling is disabled (train.disable_sampling)');
    } else if (key.startsWith(`${processKey}.`)) {
      const rel = key.slice(processKey.length + 1);
      const ds = /^datasets\[(\d+)\]\.(.+)$/.exec(rel);
      if (ds) {
        const j = Number(ds[1]);
        applyKey(DATASET_RULES, report, key, ds[2]!, value, { ...base, scope: datasets[j]!, datasets: nodesOf[j]! } as never);
        continue;
      }
      const section = rel.split(/[.[]/)[0]!;
      const scope = rel.includes('.') ? obj(proc[section]) : proc;
      applyKey(PROCESS_RULES, report, key, rel.replace(/\[\d+\]/g, '[]'), value, { ...base, scope, datasets: [] } as never);
    } else if (key.startsWith('config.process[')) {
      report.add(key, value, isUnset(value) ? 'ignored' : 'unsupported', [], 'only the first training process is imported');
    } else if (key === 'job') {
      report.add(key, value, 'ignored', [], job === 'train' ? 'the older layout: settings read the same way' : 'the file\'s layout');
    } else if (key === 'config.name') {
      report.add(key, value, 'mapped', [label('train.saveName'), label('save.name')]);
    } else if (/^config\.(training_folder|device|log_dir)$/.test(key)) {
      report.add(key, value, 'ignored', [], 'set per machine in loragraph (data folder, LORAGRAPH_EP)');
    } else if (key.startsWith('meta.')) {
      report.add(key, value, 'ignored', [], 'metadata ai-toolkit copies into the saved file');
    } else {
      report.add(key, value, isUnset(value) ? 'ignored' : 'unsupported', [], 'no counterpart in loragraph');
    }
  }
  // Differential Guidance without DOP: a DOP node that preserves nothing.
  if (plan.has('dop') && !obj(proc.train).diff_output_preservation) plan.set('dop.lossMultiplier', 0);
  if (plan.has('dop') && obj(proc.train).diff_output_preservation && !obj(proc.train).diff_output_preservation_class) {
    const cls = datasets.map((d) => d.diff_output_preservation_class).find((x) => typeof x === 'string' && x);
    if (cls) plan.set('dop.preservationClass', cls);
  }
  return { plan, report, family, name: name as string };
}

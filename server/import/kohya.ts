// kohya_ss GUI configs and presets (JSON: numbers often stored as strings, "" meaning unset) and sd-scripts
// `--config_file` TOML (sections flattened, as sd-scripts reads them) → the graph. One table maps every
// sd-scripts / kohya_ss key to its node widget; dataset TOML files are dataset-toml.ts.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { NodeRegistry } from '../../nodes/registry';
import type { ProjectPaths } from '../paths';
import { familyFromKohya, type FamilyInfo } from './families';
import { importDatasetToml } from './dataset-toml';
import { toProjectPath } from './paths';
import { Plan, label } from './plan';
import { ReportBuilder } from './report';
import { applyKey, isUnset, UnsupportedValue, type Outcome, type Rule, type RuleContext } from './rules';
import { parseSource, type ParsedSource } from './source';

/** kohya stores numbers as strings in GUI configs and uses "" for unset: a number, or undefined when unset. */
export function kohyaNumber(v: unknown): number | undefined {
  if (v === '' || v === null || v === undefined) return undefined;
  const n = typeof v === 'number' ? v : Number(String(v).trim());
  if (!Number.isFinite(n)) throw new UnsupportedValue(`"${v}" is not a number`);
  return n;
}
const num = (v: unknown) => kohyaNumber(v);
const isOff = (v: unknown) => isUnset(v) || v === 0 || v === '0';

export const KOHYA_OPTIMIZERS: Record<string, [string, string?]> = {
  adamw: ['AdamW'], adamw8bit: ['AdamW8bit'], pagedadamw8bit: ['AdamW8bit', 'paged AdamW 8-bit → AdamW8bit'],
  adafactor: ['Adafactor'], lion: ['Lion'], lion8bit: ['Lion', 'Lion 8-bit → Lion'], pagedlion8bit: ['Lion', 'paged Lion 8-bit → Lion'],
  prodigy: ['Prodigy'], sgdnesterov: ['SGD', 'SGDNesterov → SGD with nesterov on'], sgdnesterov8bit: ['SGD', 'SGDNesterov8bit → SGD with nesterov on'],
};
const KOHYA_SAMPLERS: Record<string, [string, string?]> = {
  ddim: ['ddim'], euler: ['euler'], k_euler: ['euler'], euler_a: ['euler_ancestral'], k_euler_a: ['euler_ancestral'],
  'dpmsolver++': ['dpmpp_2m', 'DPM-Solver++ → DPM++ 2M'], dpmsolver: ['dpmpp_2m', 'DPM-Solver → DPM++ 2M'], dpmsingle: ['dpmpp_2m', 'DPM single → DPM++ 2M'],
  lms: ['euler', 'LMS → euler'], k_lms: ['euler', 'LMS → euler'], heun: ['euler', 'Heun → euler'], pndm: ['euler', 'PNDM → euler'],
  dpm_2: ['euler', 'DPM2 → euler'], k_dpm_2: ['euler', 'DPM2 → euler'], dpm_2_a: ['euler_ancestral', 'DPM2 a → Euler a'], k_dpm_2_a: ['euler_ancestral', 'DPM2 a → Euler a'],
};
const LORA_TYPES: Record<string, string> = {
  Standard: 'LoRA', 'Kohya LoCon': 'LoCon', 'LyCORIS/LoCon': 'LoCon', 'LyCORIS/LoKr': 'LoKr', 'Kohya LoKr': 'LoKr',
};
const LYCORIS_ALGOS: Record<string, string> = { lora: 'LoRA', locon: 'LoCon', lokr: 'LoKr' };
const SAVE_PRECISION: Record<string, string> = { fp16: 'fp16', bf16: 'bf16', float: 'fp32', fp32: 'fp32' };
const LR_SCHEDULERS = ['constant', 'constant_with_warmup', 'linear', 'cosine', 'cosine_with_restarts'];
const LOSSES: Record<string, [string, string?]> = { l2: ['mse'], l1: ['l1'], huber: ['pseudo_huber', 'kohya\'s huber is the pseudo-Huber loss'], smooth_l1: ['huber', 'smooth L1 → huber'] };

function pick(table: Record<string, [string, string?]>, v: unknown, what: string): [string, string?] {
  const hit = table[String(v).toLowerCase()] ?? table[String(v)];
  if (!hit) throw new UnsupportedValue(`${what} "${v}" has no counterpart (loragraph has ${[...new Set(Object.values(table).map((t) => t[0]))].join(', ')})`);
  return hit;
}

/** "key=value" items: a TOML list, or the GUI's space-separated string. */
export function keyValueArgs(v: unknown): Record<string, string> {
  const items = Array.isArray(v) ? v.map(String) : String(v ?? '').split(/\s+/).filter(Boolean);
  return Object.fromEntries(items.map((item) => {
    const eq = item.indexOf('=');
    return eq < 0 ? [item.trim(), 'true'] : [item.slice(0, eq).trim(), item.slice(eq + 1).trim().replace(/^["']|["']$/g, '')];
  }));
}

/** A kohya resolution "W,H", [W, H] or W → loragraph's one size; a non-square area becomes its square side. */
export function kohyaResolution(v: unknown): { size: string; note?: string } {
  const parts = (Array.isArray(v) ? v : String(v).split(',')).map((x) => Number(String(x).trim()));
  if (!parts.length || parts.length > 2 || parts.some((x) => !Number.isInteger(x) || x <= 0)) throw new UnsupportedValue(`resolution "${v}": expected W, "W,H" or [W, H]`);
  const [w, h = w] = parts as [number, number?] as [number, number];
  if (w === h) return { size: String(w) };
  const side = Math.round(Math.sqrt(w * h) / 8) * 8;
  return { size: String(side), note: `kohya's [${w}, ${h}] is one training area (buckets keep ${w}×${h} pixels); loragraph takes a side: ${side}` };
}

interface KohyaContext extends RuleContext { paths?: ProjectPaths; configDir: string; gui: boolean }

/**
 * kohya_ss (the GUI) decides what trains from the two learning rates: text_encoder_lr 0 with unet_lr set trains
 * the UNet only, unet_lr 0 with text_encoder_lr set the text encoder only (kohya_gui/lora_gui.py).
 */
function textEncoderLrOutcome(v: unknown, c: KohyaContext) {
  const te = num(v) ?? 0;
  const unet = num(c.scope.unet_lr) ?? 0;
  if (te === 0) {
    if (c.gui && unet !== 0) return { targets: c.set('target.trainTextEncoder', false), note: 'kohya_ss trains the UNet only when text_encoder_lr is 0' };
    return { status: 'ignored' as const, note: 'unset: learning_rate applies' };
  }
  const targets = c.set('optimizer.textEncoderLr', te);
  return c.gui && unet === 0
    ? { status: 'changed' as const, targets, note: 'kohya_ss would train the text encoder only (unet_lr 0); loragraph always trains the denoiser' }
    : { targets };
}

const setNum = (to: `${string}.${string}`) => (v: unknown, c: RuleContext) => {
  const n = num(v);
  return n === undefined ? { status: 'ignored' as const, note: 'unset' } : { targets: c.set(to as never, n) };
};
const RUNTIME = 'a runtime/memory setting loragraph decides';

/** An epoch count: Train counts steps from epochs as kohya does (Train.stepsFrom epochs). */
function epochsOutcome(v: unknown, c: RuleContext): Outcome {
  const n = num(v);
  if (isOff(v) || n === undefined) return { status: 'ignored', note: 'unset' };
  if (!Number.isInteger(n) || n < 1) throw new UnsupportedValue(`${n} epochs: a whole number ≥ 1`);
  return { targets: [...c.set('train.stepsFrom', 'epochs'), ...c.set('train.epochs', n)], note: 'Train works the steps out from the images and repeats it is given' };
}

export const KOHYA_RULES: Rule[] = [
  // model
  { key: 'pretrained_model_name_or_path', apply: (v, c) => (isUnset(v) ? { status: 'ignored', note: 'unset: Load Model keeps the built-in tiny model' } : pathOutcome(String(v), 'models', 'model.checkpoint', c)) },
  ...['sdxl', 'v2', 'flux1_checkbox', 'sd3_checkbox'].map((k): Rule => ({ key: k, apply: (v, c) => (v ? familyOutcome(c) : { status: 'ignored', note: 'unset' }) })),
  { key: 'v_parameterization', status: 'unsupported', default: false, note: 'v-prediction models' },
  { key: 'clip_skip', apply: setNum('model.clipSkip') },
  { key: 'model_list', status: 'ignored', note: 'the GUI\'s model menu' },
  { key: 'vae', status: 'unsupported', note: 'a separate VAE file' },
  // network
  {
    key: 'LoRA_type',
    apply: (v, c) => {
      const t = LORA_TYPES[String(v)];
      if (!t) throw new UnsupportedValue(`LoRA_type "${v}" has no counterpart (loragraph has LoRA, LoCon, LoKr); the graph trains a LoRA`);
      return { targets: c.set('target.networkType', t) };
    },
  },
  {
    key: 'network_module',
    apply: (v, c) => {
      const args = keyValueArgs(c.scope.network_args);
      if (v === 'networks.lora') return { targets: c.set('target.networkType', args.conv_dim ? 'LoCon' : 'LoRA'), ...(args.conv_dim ? { note: 'networks.lora with conv_dim: LoCon' } : {}) };
      if (v === 'lycoris.kohya') {
        const algo = LYCORIS_ALGOS[(args.algo ?? 'lora').toLowerCase()];
        if (!algo) throw new UnsupportedValue(`LyCORIS algo "${args.algo}" has no counterpart (loragraph has LoRA, LoCon, LoKr)`);
        return { targets: c.set('target.networkType', algo) };
      }
      throw new UnsupportedValue(`network_module "${v}" has no counterpart (networks.lora, lycoris.kohya)`);
    },
  },
  { key: 'network_args', apply: (v, c) => networkArgsOutcome(keyValueArgs(v), c) },
  { key: 'network_dim', apply: setNum('target.rank') },
  { key: 'network_alpha', apply: setNum('target.alpha') },
  { key: 'conv_dim', apply: (v, c) => convOutcome(v, 'target.convRank', c) },
  { key: 'conv_alpha', apply: (v, c) => convOutcome(v, 'target.convAlpha', c) },
  { key: 'network_dropout', apply: (v, c) => (isOff(v) ? { status: 'ignored', note: 'unset' } : setNum('target.dropout')(v, c)) },
  { key: 'factor', apply: (v, c) => (c.plan.get('target.networkType') === 'LoKr' ? setNum('target.lokrFactor')(v, c) : { status: 'ignored', note: 'LoKr only' }) },
  { key: 'network_train_unet_only', apply: (v, c) => ({ targets: c.set('target.trainTextEncoder', !v) }) },
  { key: 'network_train_text_encoder_only', status: 'unsupported', default: false, note: 'the denoiser always trains' },
  { key: 'network_weights', status: 'unsupported', note: 'starting from a LoRA file' },
  { key: 'lora_network_weights', status: 'unsupported', note: 'starting from a LoRA file' },
  { key: 'dim_from_weights', status: 'unsupported', default: false },
  ...['rank_dropout', 'module_dropout'].map((k): Rule => ({ key: k, status: 'unsupported', default: 0 })),
  ...['use_cp', 'use_tucker', 'use_scalar', 'decompose_both', 'train_norm', 'rank_dropout_scale', 'constrain', 'rescaled', 'bypass_mode', 'dora_wd'].map((k): Rule => ({ key: k, status: 'unsupported', default: false })),
  { key: 'train_on_input', status: 'unsupported', default: true, note: 'LyCORIS (IA)³ only' },
  { key: 'unit', status: 'unsupported', default: 1, note: 'DyLoRA only' },
  ...['block_dims', 'block_alphas', 'conv_block_dims', 'conv_block_alphas', 'conv_dims', 'conv_alphas', 'down_lr_weight', 'mid_lr_weight', 'up_lr_weight', 'block_lr_zero_threshold'].map((k): Rule => ({ key: k, status: 'unsupported', note: 'per-block ranks and learning rates' })),
  // optimizer
  { key: 'optimizer', apply: (v, c) => optimizerOutcome(v, c) },
  { key: 'optimizer_type', apply: (v, c) => optimizerOutcome(v, c) },
  { key: 'optimizer_args', apply: (v, c) => optimizerArgsOutcome(keyValueArgs(v), c) },
  { key: 'learning_rate', apply: (v, c) => (num(c.scope.unet_lr) ? { status: 'ignored', note: 'unet_lr takes precedence' } : setNum('optimizer.learningRate')(v, c)) },
  { key: 'unet_lr', apply: (v, c) => (isOff(v) ? { status: 'ignored', note: 'unset: learning_rate applies' } : setNum('optimizer.learningRate')(v, c)) },
  { key: 'text_encoder_lr', apply: (v, c) => textEncoderLrOutcome(v, c as KohyaContext) },
  { key: 'lr_scheduler', apply: (v, c) => { if (!LR_SCHEDULERS.includes(String(v))) throw new UnsupportedValue(`lr_scheduler "${v}" has no counterpart (${LR_SCHEDULERS.join(', ')})`); return { targets: c.set('optimizer.lrScheduler', v) }; } },
  { key: 'lr_warmup_steps', apply: (v, c) => (isOff(v) ? { status: 'ignored', note: 'unset' } : setNum('optimizer.warmupSteps')(v, c)) },
  {
    key: 'lr_warmup',
    apply: (v, c) => {
      const pct = num(v);
      if (!pct) return { status: 'ignored', note: 'unset' };
      const steps = num(c.scope.max_train_steps);
      if (!steps) throw new UnsupportedValue(`lr_warmup ${pct}% of the steps: the step count is not in the file (epochs), set Optimizer.warmupSteps`);
      return { status: 'changed', targets: c.set('optimizer.warmupSteps', Math.round((pct / 100) * steps)), note: `${pct}% of ${steps} steps` };
    },
  },
  { key: 'lr_scheduler_num_cycles', apply: (v, c) => (isOff(v) ? { status: 'ignored', note: 'unset' } : setNum('optimizer.numCycles')(v, c)) },
  { key: 'lr_scheduler_power', status: 'unsupported', note: 'polynomial scheduler' },
  { key: 'lr_scheduler_args', status: 'unsupported' },
  { key: 'max_grad_norm', apply: setNum('optimizer.maxGradNorm') },
  // training
  // Which count decides: sd-scripts' max_train_epochs overrides max_train_steps; the kohya_ss GUI works
  // steps out from its epoch field only when max_train_steps is unset.
  {
    key: 'max_train_steps',
    apply: (v, c) => (isOff(v) ? { status: 'ignored', note: 'unset: the epochs decide in kohya' }
      : num(c.scope.max_train_epochs) ? { status: 'ignored', note: 'max_train_epochs takes precedence in sd-scripts' } : setNum('train.steps')(v, c)),
  },
  { key: 'max_train_epochs', apply: (v, c) => epochsOutcome(v, c) },
  {
    key: 'epoch',
    apply: (v, c) => (num(c.scope.max_train_epochs) ? { status: 'ignored', note: 'max_train_epochs is set' }
      : !isOff(c.scope.max_train_steps) ? { status: 'ignored', note: 'max_train_steps is set (kohya_ss counts epochs only without it)' } : epochsOutcome(v, c)),
  },
  { key: 'train_batch_size', apply: setNum('train.batchSize') },
  { key: 'gradient_accumulation_steps', apply: setNum('train.gradientAccumulation') },
  { key: 'seed', apply: (v, c) => (isUnset(v) ? { status: 'ignored', note: 'unset (kohya picks a random seed; Train keeps 42)' } : setNum('train.seed')(v, c)) },
  { key: 'noise_offset', apply: (v, c) => (c.scope.noise_offset_type === 'Multires' ? { status: 'ignored', note: 'Multires noise is selected' } : isOff(v) ? { status: 'ignored', note: 'unset' } : setNum('train.noiseOffset')(v, c)) },
  { key: 'noise_offset_type', status: 'unsupported', default: 'Original', note: 'multi-resolution noise' },
  ...['adaptive_noise_scale', 'multires_noise_iterations', 'multires_noise_discount', 'ip_noise_gamma', 'v_pred_like_loss', 'scale_weight_norms', 'stop_text_encoder_training', 'stop_text_encoder_training_pct', 'caption_dropout_every_n_epochs', 'sample_every_n_epochs', 'save_last_n_steps', 'save_last_n_steps_state', 'save_last_n_epochs', 'save_last_n_epochs_state', 'vae_batch_size'].map((k): Rule => ({ key: k, status: 'unsupported', default: 0 })),
  ...['scale_v_pred_loss_like_noise_pred', 'debiased_estimation_loss', 'zero_terminal_snr', 'weighted_captions', 'no_token_padding', 'sample_at_first', 'save_state', 'save_state_on_train_end', 'color_aug', 'random_crop', 'bucket_no_upscale', 'alpha_mask', 'masked_loss'].map((k): Rule => ({ key: k, status: 'unsupported', default: false })),
  { key: 'min_snr_gamma', apply: (v, c) => (isOff(v) ? { status: 'ignored', note: 'unset' } : setNum('train.minSnrGamma')(v, c)) },
  { key: 'loss_type', apply: (v, c) => { const [l, note] = pick(LOSSES, v, 'loss_type'); return { targets: c.set('train.lossType', l), ...(note ? { note } : {}) }; } },
  { key: 'huber_c', status: 'unsupported', default: 0.1 },
  { key: 'huber_schedule', status: 'unsupported', default: 'snr' },
  { key: 'prior_loss_weight', apply: setNum('train.priorLossWeight') },
  { key: 'cache_latents', apply: (v, c) => ({ targets: c.set('train.cacheLatents', !!v) }) },
  { key: 'cache_latents_to_disk', status: 'ignored', note: 'cached latents live in the data folder\'s temp/' },
  { key: 'cache_text_encoder_outputs', apply: (v, c) => ({ targets: c.set('train.cacheTextEmbeddings', !!v) }) },
  { key: 'sdxl_cache_text_encoder_outputs', apply: (v, c) => ({ targets: c.set('train.cacheTextEmbeddings', !!v) }) },
  { key: 'min_timestep', apply: setNum('schedule.minTimestep') },
  { key: 'max_timestep', apply: setNum('schedule.maxTimestep') },
  { key: 'max_token_length', status: 'unsupported', default: 75, note: 'prompts use 75 tokens' },
  // saving
  { key: 'save_every_n_steps', apply: (v, c) => (isOff(v) ? { status: 'ignored', note: 'unset' } : setNum('train.saveEvery')(v, c)) },
  { key: 'save_every_n_epochs', status: 'unsupported', note: 'epochs: use Train.saveEvery (steps)' },
  { key: 'save_precision', apply: (v, c) => ({ targets: c.set('save.dtype', pick(Object.fromEntries(Object.entries(SAVE_PRECISION).map(([k, d]) => [k, [d] as [string]])), v, 'save_precision')[0]) }) },
  { key: 'save_model_as', status: 'unsupported', default: 'safetensors' },
  { key: 'output_name', apply: (v, c) => (isUnset(v) ? { status: 'ignored', note: 'unset' } : { targets: [...c.set('train.saveName', String(v)), ...c.set('save.name', String(v))] }) },
  ...['output_dir', 'logging_dir', 'log_prefix', 'log_with', 'log_tracker_name', 'log_tracker_config', 'wandb_run_name', 'wandb_api_key', 'training_comment', 'save_as_bool'].map((k): Rule => ({ key: k, status: 'ignored', note: 'output and logging locations: loragraph writes to the data folder' })),
  ...['mixed_precision', 'full_fp16', 'full_bf16', 'fp8_base', 'xformers', 'sdpa', 'mem_eff_attn', 'gradient_checkpointing', 'num_cpu_threads_per_process', 'max_data_loader_n_workers', 'persistent_data_loader_workers', 'lowram', 'lowvram', 'highvram', 'sdxl_no_half_vae', 'no_half_vae', 'cpu_offload_checkpointing', 'num_processes', 'num_machines', 'multi_gpu', 'gpu_ids', 'main_process_port', 'dynamo_backend', 'extra_accelerate_launch_args'].map((k): Rule => ({ key: k, status: 'ignored', note: RUNTIME })),
  { key: 'additional_parameters', status: 'unsupported', note: 'extra command-line flags' },
  // data
  { key: 'train_data_dir', apply: (v, c) => (isUnset(v) ? { status: 'ignored', note: 'unset' } : pathOutcome(String(v), 'datasets', 'dataset.folder', { ...c, datasets: [0] })) },
  { key: 'reg_data_dir', apply: (v, c) => (isUnset(v) ? { status: 'ignored', note: 'unset' } : pathOutcome(String(v), 'datasets', 'dataset.folder', { ...c, datasets: [1] })) },
  { key: 'max_resolution', apply: (v, c) => resolutionOutcome(v, c) },
  { key: 'resolution', apply: (v, c) => resolutionOutcome(v, c) },
  { key: 'caption_extension', apply: (v, c) => ({ targets: c.set('dataset.captionExtension', String(v)), ...(String(v).includes('none') ? { note: 'no caption file has this extension, so captions fall back to the "N_name" folder names, as in kohya_ss' } : {}) }) },
  { key: 'caption_dropout_rate', apply: setNum('dataset.captionDropoutRate') },
  { key: 'caption_tag_dropout_rate', apply: setNum('dataset.tokenDropoutRate') },
  { key: 'shuffle_caption', apply: (v, c) => ({ targets: c.set('dataset.shuffleTags', !!v) }) },
  { key: 'keep_tokens', apply: setNum('dataset.keepTokens') },
  { key: 'caption_separator', to: 'dataset.separator' },
  ...['keep_tokens_separator', 'secondary_separator', 'caption_prefix', 'caption_suffix'].map((k): Rule => ({ key: k, status: 'unsupported' })),
  { key: 'flip_aug', apply: (v, c) => ({ targets: c.set('dataset.flipX', !!v) }) },
  { key: 'enable_bucket', apply: (v) => (v ? { status: 'ignored', note: 'Dataset always buckets by aspect ratio' } : { status: 'changed', targets: [], note: 'kohya crops to one size without buckets; Dataset always buckets by aspect ratio' }) },
  { key: 'bucket_reso_steps', apply: setNum('dataset.bucketStep') },
  ...['min_bucket_reso', 'max_bucket_reso'].map((k): Rule => ({ key: k, status: 'unsupported', note: 'Dataset picks buckets around its resolution' })),
  // samples
  { key: 'sample_prompts', apply: (v, c) => promptsOutcome(v, c as KohyaContext) },
  { key: 'sample_every_n_steps', apply: (v, c) => (isOff(v) ? { status: 'ignored', note: 'unset' } : setNum('train.sampleEvery')(v, c)) },
  { key: 'sample_sampler', apply: (v, c) => { const [s, note] = pick(KOHYA_SAMPLERS, v, 'sample_sampler'); return { targets: c.set('sampler.sampler', s), ...(note ? { status: 'changed' as const, note } : {}) }; } },
];

function pathOutcome(p: string, folder: 'models' | 'datasets', to: 'model.checkpoint' | 'dataset.folder', c: RuleContext) {
  const m = toProjectPath(p, folder, (c as KohyaContext).paths?.[folder]);
  const targets = to === 'dataset.folder' ? c.datasets.map((i) => c.plan.set(to, m.value, i)) : c.set(to, m.value);
  return { targets, ...(m.changed ? { status: 'changed' as const, note: m.note } : {}) };
}

function familyOutcome(c: RuleContext) {
  return c.family.trainable
    ? { targets: [`${label('model.checkpoint')} (family)`], note: c.family.label }
    : { status: 'unsupported' as const, note: `${c.family.label}: loragraph cannot train this family yet` };
}

function convOutcome(v: unknown, to: 'target.convRank' | 'target.convAlpha', c: RuleContext) {
  const type = c.plan.get('target.networkType');
  if (type === 'LoRA') return { status: 'ignored' as const, note: 'used by LoCon/LoKr only' };
  return setNum(to)(v, c);
}

function optimizerOutcome(v: unknown, c: RuleContext) {
  const [name, note] = pick(KOHYA_OPTIMIZERS, isUnset(v) ? 'AdamW' : v, 'optimizer');
  const targets = c.set('optimizer.optimizer', name);
  if (/nesterov/i.test(String(v))) targets.push(...c.set('optimizer.nesterov', true));
  return { targets, ...(note ? { status: 'changed' as const, note } : {}) };
}

function optimizerArgsOutcome(args: Record<string, string>, c: RuleContext) {
  if (!Object.keys(args).length) return { status: 'ignored' as const, note: 'unset' };
  const targets: string[] = [];
  const dropped: string[] = [];
  for (const [k, v] of Object.entries(args)) {
    if (k === 'weight_decay') targets.push(...c.set('optimizer.weightDecay', Number(v)));
    else if (k === 'eps') targets.push(...c.set('optimizer.eps', Number(v)));
    else if (k === 'betas') { const [b1, b2] = v.split(',').map(Number); targets.push(...c.set('optimizer.beta1', b1), ...(b2 !== undefined ? c.set('optimizer.beta2', b2) : [])); }
    else if (k === 'relative_step') targets.push(...c.set('optimizer.relativeStep', v.toLowerCase() === 'true'));
    else if (k === 'scale_parameter' || k === 'warmup_init') dropped.push(`${k} (Adafactor follows relative_step)`);
    else dropped.push(k);
  }
  return { status: dropped.length ? 'changed' as const : 'mapped' as const, targets, ...(dropped.length ? { note: `not carried: ${dropped.join(', ')}` } : {}) };
}

function networkArgsOutcome(args: Record<string, string>, c: RuleContext) {
  if (!Object.keys(args).length) return { status: 'ignored' as const, note: 'unset' };
  const targets: string[] = [];
  const dropped: string[] = [];
  for (const [k, v] of Object.entries(args)) {
    if (k === 'conv_dim') targets.push(...c.set('target.convRank', Number(v)));
    else if (k === 'conv_alpha') targets.push(...c.set('target.convAlpha', Number(v)));
    else if (k === 'algo') targets.push(label('target.networkType'));
    else if (k === 'factor') targets.push(...c.set('target.lokrFactor', Number(v)));
    else if (k === 'full_matrix') targets.push(...c.set('target.lokrFullMatrix', v.toLowerCase() === 'true'));
    else if (k === 'dropout') targets.push(...c.set('target.dropout', Number(v)));
    else dropped.push(k);
  }
  return { status: dropped.length ? 'changed' as const : 'mapped' as const, targets, ...(dropped.length ? { note: `not carried: ${dropped.join(', ')}` } : {}) };
}

function resolutionOutcome(v: unknown, c: RuleContext) {
  if (isUnset(v)) return { status: 'ignored' as const, note: 'unset' };
  const r = kohyaResolution(v);
  return { targets: c.datasets.flatMap((i) => [c.plan.set('dataset.resolution', r.size, i)]), ...(r.note ? { status: 'changed' as const, note: r.note } : {}) };
}

/** sample_prompts: the prompt text (kohya_ss GUI) or a prompt file next to the config (sd-scripts). */
function promptsOutcome(v: unknown, c: KohyaContext) {
  if (isUnset(v)) return { status: 'ignored' as const, note: 'unset' };
  let text = String(v);
  let note: string | undefined;
  const file = resolve(c.configDir, text);
  if (/\.(txt|toml|json)$/i.test(text.trim())) {
    if (!existsSync(file)) throw new UnsupportedValue(`the prompt file ${text} is not next to the config; paste its prompts into Sampler Settings`);
    if (!/\.txt$/i.test(text)) throw new UnsupportedValue(`prompt files in ${text.split('.').pop()} form are not read; use a .txt prompt file`);
    text = readFileSync(file, 'utf8');
    note = `read from ${v}`;
  }
  const prompts = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).join('\n');
  c.plan.use('sampler');
  return { targets: c.set('sampler.prompts', prompts), ...(note ? { note } : {}) };
}

function flatten(source: ParsedSource): [string, string, unknown][] {
  // sd-scripts flattens one level of sections; kohya_ss JSON is flat already.
  const out: [string, string, unknown][] = [];
  for (const [k, v] of Object.entries(source.data as Record<string, unknown>)) {
    if (v && typeof v === 'object' && !Array.isArray(v)) for (const [kk, vv] of Object.entries(v)) out.push([`${k}.${kk}`, kk, vv]);
    else out.push([k, k, v]);
  }
  return out;
}

export function isKohyaGui(data: unknown): boolean {
  const d = data as Record<string, unknown>;
  return !!d && typeof d === 'object' && !Array.isArray(d) && ('LoRA_type' in d || 'network_dim' in d || 'pretrained_model_name_or_path' in d || 'train_data_dir' in d || 'max_resolution' in d);
}

export async function importKohya(source: ParsedSource, registry: NodeRegistry, opts: { paths?: ProjectPaths; dir: string; format: 'kohya_ss' | 'sd-scripts config' }) {
  const flat = flatten(source);
  const scope: Record<string, unknown> = Object.fromEntries(flat.map(([, k, v]) => [k, v]));
  const loraType = String(scope.LoRA_type ?? '');
  const family: FamilyInfo = await familyFromKohya(
    { sdxl: !!scope.sdxl, v2: !!scope.v2, flux1: !!scope.flux1_checkbox || /^Flux1/.test(loraType) || 'ae' in scope && 't5xxl' in scope, sd3: !!scope.sd3_checkbox },
    scope.sdxl ? 'sdxl: true' : scope.v2 ? 'v2: true' : scope.flux1_checkbox ? 'flux1_checkbox: true' : /^Flux1/.test(loraType) ? `LoRA_type: ${loraType}` : 'no sdxl / v2 / flux1 switch: SD 1.x',
  );
  const report = new ReportBuilder(source.lineOf);
  const plan = new Plan(registry);
  // sd-scripts' argparse defaults where they differ from the nodes'.
  plan.set('model.checkpoint', 'builtin:tiny');
  plan.set('optimizer.optimizer', 'AdamW');
  plan.set('optimizer.learningRate', 2e-6);
  plan.set('target.networkType', 'LoRA');
  plan.set('target.rank', 4);
  plan.set('target.alpha', 1);
  plan.set('target.targetPreset', 'all_linear');
  plan.set('target.trainTextEncoder', true);
  plan.set('train.steps', 1600);
  plan.set('train.saveName', 'last');
  plan.set('train.cacheLatents', false);
  plan.set('train.cacheTextEmbeddings', false);
  plan.set('schedule.timestepType', 'linear');
  plan.set('save.name', 'last');
  plan.set('save.dtype', 'fp32');
  plan.use('loss');
  // The network type first: conv_dim, factor read it.
  const typeKey = flat.find(([, k]) => k === 'LoRA_type' || k === 'network_module');
  const ctxBase = { plan, family, scope, paths: opts.paths, configDir: opts.dir, gui: opts.format === 'kohya_ss' };

  const datasetConfig = typeof scope.dataset_config === 'string' && scope.dataset_config ? resolve(opts.dir, scope.dataset_config) : undefined;
  const fromToml = datasetConfig && existsSync(datasetConfig);
  const DATA_KEYS = new Set(['train_data_dir', 'reg_data_dir', 'max_resolution', 'resolution', 'caption_extension', 'caption_dropout_rate', 'caption_tag_dropout_rate', 'shuffle_caption', 'keep_tokens', 'caption_separator', 'flip_aug', 'enable_bucket', 'bucket_reso_steps', 'min_bucket_reso', 'max_bucket_reso', 'color_aug', 'random_crop', 'bucket_no_upscale', 'keep_tokens_separator', 'secondary_separator', 'caption_prefix', 'caption_suffix', 'caption_dropout_every_n_epochs']);
  if (!fromToml) {
    plan.dataset(0);
    plan.set('dataset.captionExtension', '.caption', 0);
    if (!isUnset(scope.reg_data_dir)) { plan.dataset(1); plan.set('dataset.isRegularization', true, 1); plan.set('dataset.captionExtension', '.caption', 1); }
  }
  const datasets = plan.datasets.map((_, i) => i);
  const apply = (full: string, key: string, value: unknown) => applyKey(KOHYA_RULES, report, full, key, value, { ...ctxBase, datasets } as never);
  if (typeKey) apply(typeKey[0], typeKey[1], typeKey[2]);
  if (fromToml) {
    const ds = parseSource(scope.dataset_config as string, readFileSync(datasetConfig!, 'utf8'));
    // The config's own data options are the fallback layer under the dataset file's [general], as in sd-scripts.
    const argparse = Object.fromEntries(flat.filter(([, k]) => DATA_KEYS.has(k)).map(([full, k, v]) => [k, { key: full, value: v }]));
    importDatasetToml(ds, plan, family, { paths: opts.paths, argparse, report });
  }
  for (const [full, key, value] of flat) {
    if (full === typeKey?.[0] || report.has(full)) continue;
    if (key === 'dataset_config') {
      report.add(full, value, fromToml ? 'mapped' : isUnset(value) ? 'ignored' : 'unsupported', fromToml ? plan.datasets.map((_, i) => `Dataset ${i + 1}`) : [], fromToml ? 'its datasets are read too (listed below by their keys)' : isUnset(value) ? 'unset' : `${value} is not next to the config`);
      continue;
    }
    if (fromToml && (key === 'train_data_dir' || key === 'reg_data_dir')) {
      report.add(full, value, 'ignored', [], 'sd-scripts ignores it when dataset_config is given');
      continue;
    }
    if (fromToml && DATA_KEYS.has(key)) continue; // reported by the dataset file's fallback resolution
    if (key === 'sample_sampler' || key === 'sample_every_n_steps') plan.use('sampler');
    apply(full, key, value);
  }
  // Sampling in kohya happens only with prompts; without them there is no Sampler Settings node.
  if (plan.has('sampler') && !plan.get('sampler.prompts')) plan.roles.delete('sampler');
  const name = String(plan.get('train.saveName') ?? 'last');
  if (!plan.datasets.length) report.notes.push('no datasets: add a Dataset node before running');
  if (isUnset(scope.pretrained_model_name_or_path)) report.notes.push('no pretrained_model_name_or_path (a preset): Load Model points at the built-in tiny model; set its checkpoint');
  plan.datasets.forEach((d, i) => { if (!d.folder) report.notes.push(`Dataset ${i + 1} has no folder: set it before running`); });
  return { plan, report, family, name, format: opts.format };
}

// Loads SD 1.x models from a single-file checkpoint (ldm layout, fp32/fp16/bf16) or a diffusers folder
// (unet/, vae/, text_encoder/, tokenizer/ with their config.json). Every tensor is checked by name and
// shape before anything is built; files of other families are named and refused.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openSafetensors, type SafetensorsReader } from '../io/safetensors';
import { ClipTokenizer } from './tokenizer';
import { SD15, type SdConfig, type UNetConfig, type ClipTextConfig, type VaeConfig, type SchedulerConfig } from './config';
import { componentTensors, COMPONENTS, IGNORED_KEYS, type Component } from './keys/expected';
import { SingleFileKeyMap, toSingleFileShape } from './keys/single-file';
import { detectFamily, FAMILY_LABEL, type ModelFamily } from './family';
import { CheckpointWeights, type CheckpointWeightsOptions, type TensorLocation } from './checkpoint-weights';

/** safetensors metadata key under which loragraph stores a non-standard config (the tiny model's). */
export const CONFIG_METADATA_KEY = 'loragraph.sd_config';

export interface LoadedSd {
  family: 'sd1';
  config: SdConfig;
  unet: CheckpointWeights;
  textEncoder: CheckpointWeights;
  vae: CheckpointWeights;
  /** From the folder's tokenizer/ (diffusers) or the `tokenizer` option; undefined otherwise. */
  tokenizer?: ClipTokenizer;
  /** Storage dtype(s) of the weights, e.g. ['F16']. */
  dtypes: string[];
  close(): void;
}

export interface LoadOptions extends CheckpointWeightsOptions {
  /** Overrides the config found in the file (metadata) or assumed (SD 1.5 sizes). */
  config?: SdConfig;
  tokenizer?: ClipTokenizer;
}

/** A file or folder that is not (or not entirely) an SD 1.x model. */
export class CheckpointError extends Error {
  constructor(readonly path: string, message: string, readonly family?: ModelFamily) {
    super(`${path}: ${message}`);
    this.name = 'CheckpointError';
  }
}

/** Loads a `.safetensors` single file or a diffusers folder. */
export async function loadSd(path: string, opts: LoadOptions = {}): Promise<LoadedSd> {
  if (!existsSync(path)) throw new CheckpointError(path, 'no such file or folder');
  return statSync(path).isDirectory() ? loadDiffusersFolder(path, opts) : loadSingleFile(path, opts);
}

function refuseOtherFamily(path: string, keys: string[], shapeOf: (k: string) => readonly number[] | undefined, accept: ModelFamily[] = ['sd1']) {
  const { family, reason } = detectFamily(keys, shapeOf);
  if (accept.includes(family)) return;
  const label = FAMILY_LABEL[family];
  const what = family === 'unknown' ? 'not a Stable Diffusion 1.x checkpoint' : `this is ${/^(SDXL|LTX|[AEIOUaeiou])/.test(label) ? 'an' : 'a'} ${label} ${family === 'lora' ? 'file' : 'checkpoint'}, not Stable Diffusion 1.x`;
  throw new CheckpointError(path, `${what} (${reason})`, family);
}

/** Lists missing, unexpected and mis-shaped tensors by name; throws if there is any. */
function checkTensors(path: string, cfg: SdConfig, found: Map<Component, Map<string, TensorLocation>>, describe: (c: Component, n: string) => string) {
  const problems: string[] = [];
  for (const c of COMPONENTS) {
    const want = componentTensors(cfg, c).shapes;
    const have = found.get(c)!;
    for (const [name, shape] of want) {
      const loc = have.get(name);
      if (!loc) { problems.push(`missing tensor '${describe(c, name)}' [${shape.join(',')}]`); continue; }
      const expected = loc.key === name ? shape : toSingleFileShape(c, name, shape);
      const ok = loc.entry.shape.length === expected.length && loc.entry.shape.every((d, i) => d === expected[i])
        || (loc.entry.shape.join() === shape.join());
      if (!ok) problems.push(`tensor '${loc.key}' has shape [${loc.entry.shape.join(',')}], expected [${expected.join(',')}]`);
    }
    for (const [name, loc] of have) if (!want.has(name)) problems.push(`unexpected tensor '${loc.key}'`);
  }
  if (problems.length) {
    const shown = problems.slice(0, 12).join('; ');
    throw new CheckpointError(path, `${problems.length} tensor problem(s): ${shown}${problems.length > 12 ? `; … and ${problems.length - 12} more` : ''}`, 'sd1');
  }
}

function dtypesOf(found: Map<Component, Map<string, TensorLocation>>) {
  const s = new Set<string>();
  for (const m of found.values()) for (const l of m.values()) s.add(l.entry.dtype);
  return [...s].sort();
}

function makeLoaded(cfg: SdConfig, found: Map<Component, Map<string, TensorLocation>>, opts: LoadOptions, label: string, tokenizer?: ClipTokenizer): LoadedSd {
  const w = (c: Component) => new CheckpointWeights(found.get(c)!, `${label} ${c}`, { external: opts.external });
  const unet = w('unet'), textEncoder = w('text_encoder'), vae = w('vae');
  return {
    family: 'sd1', config: cfg, unet, textEncoder, vae, tokenizer, dtypes: dtypesOf(found),
    close() { unet.close(); textEncoder.close(); vae.close(); },
  };
}

function configFromMetadata(path: string, meta: Record<string, string>): SdConfig | undefined {
  const text = meta[CONFIG_METADATA_KEY];
  if (text === undefined) return undefined;
  try { return JSON.parse(text) as SdConfig; }
  catch (e) { throw new CheckpointError(path, `metadata '${CONFIG_METADATA_KEY}' is not valid JSON: ${(e as Error).message}`); }
}

/** A single-file checkpoint (`model.diffusion_model.*`, `first_stage_model.*`, `cond_stage_model.transformer.*`). */
export async function loadSingleFile(path: string, opts: LoadOptions = {}): Promise<LoadedSd> {
  const reader = await openSafetensors(path);
  try {
    const keys = reader.names();
    refuseOtherFamily(path, keys, (k) => (reader.has(k) ? reader.entry(k).shape : undefined));
    let cfg = opts.config ?? configFromMetadata(path, reader.metadata);
    if (!cfg) {
      // Real SD 1.x files carry no config: they are SD 1.5-sized; inpainting models take 9 input channels.
      const convIn = reader.has('model.diffusion_model.input_blocks.0.0.weight') ? reader.entry('model.diffusion_model.input_blocks.0.0.weight').shape : undefined;
      cfg = { ...SD15, unet: { ...SD15.unet, inChannels: convIn?.[1] ?? SD15.unet.inChannels } };
    }
    const map = new SingleFileKeyMap(cfg);
    const found = new Map<Component, Map<string, TensorLocation>>(COMPONENTS.map((c) => [c, new Map()]));
    const unexpected: string[] = [];
    for (const key of keys) {
      const d = map.toDiffusers(key);
      if (d) { found.get(d.component)!.set(d.name, { file: path, key, entry: reader.entry(key) }); continue; }
      if (isIgnoredSingleFileKey(key)) continue;
      unexpected.push(key);
    }
    if (unexpected.length) {
      // Report them with the other problems: put each under the component its prefix names.
      for (const key of unexpected) {
        const c = COMPONENTS.find((x) => key.startsWith(singlePrefix(x))) ?? 'unet';
        found.get(c)!.set(`?${key}`, { file: path, key, entry: reader.entry(key) });
      }
    }
    checkTensors(path, cfg, found, (c, n) => map.toSingleFile(c, n) ?? n);
    return makeLoaded(cfg, found, opts, path, opts.tokenizer);
  } finally {
    await reader.close();
  }
}

const singlePrefix = (c: Component) => ({ unet: 'model.diffusion_model.', vae: 'first_stage_model.', text_encoder: 'cond_stage_model.' })[c];

/**
 * Keys single files carry besides the three models: EMA copies and training buffers (full,
 * non-pruned checkpoints), the text encoder's position_ids buffer.
 */
function isIgnoredSingleFileKey(key: string): boolean {
  return /^model_ema\./.test(key)
    || /^(betas|alphas_cumprod|alphas_cumprod_prev|sqrt_alphas_cumprod|sqrt_one_minus_alphas_cumprod|log_one_minus_alphas_cumprod|sqrt_recip_alphas_cumprod|sqrt_recipm1_alphas_cumprod|posterior_variance|posterior_log_variance_clipped|posterior_mean_coef1|posterior_mean_coef2|logvar)$/.test(key)
    || key === 'cond_stage_model.transformer.text_model.embeddings.position_ids';
}

// --- diffusers folders ---------------------------------------------------------------------------

const WEIGHT_FILES: Record<Component, string[]> = {
  unet: ['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.fp16.safetensors'],
  vae: ['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.fp16.safetensors'],
  text_encoder: ['model.safetensors', 'model.fp16.safetensors'],
};

function readJson(path: string): Record<string, any> {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch { throw new CheckpointError(path, 'missing (a diffusers folder needs each part\'s config.json)'); }
  try { return JSON.parse(text); } catch (e) { throw new CheckpointError(path, `not valid JSON: ${(e as Error).message}`); }
}

function need<T>(path: string, obj: Record<string, any>, field: string, check: (v: any) => boolean, fallback?: T): T {
  const v = obj[field];
  if (v === undefined && fallback !== undefined) return fallback;
  if (!check(v)) throw new CheckpointError(path, `field '${field}' is ${JSON.stringify(v)}`);
  return v as T;
}
const isInt = (v: any) => Number.isInteger(v) && v > 0;
const isIntList = (v: any) => Array.isArray(v) && v.length > 0 && v.every(isInt);
const isNum = (v: any) => typeof v === 'number' && Number.isFinite(v);

function unetConfigFrom(path: string, j: Record<string, any>): UNetConfig {
  const down = need<string[]>(path, j, 'down_block_types', (v) => Array.isArray(v));
  const channels = need<number[]>(path, j, 'block_out_channels', isIntList);
  const heads = j.num_attention_heads ?? j.attention_head_dim;
  if (!isInt(heads)) throw new CheckpointError(path, `field 'attention_head_dim' is ${JSON.stringify(j.attention_head_dim)} (SD 1.x gives one number of heads)`);
  return {
    inChannels: need(path, j, 'in_channels', isInt, 4),
    outChannels: need(path, j, 'out_channels', isInt, 4),
    blockOutChannels: channels,
    downBlockCrossAttention: down.map((t) => t.startsWith('CrossAttn')),
    layersPerBlock: need(path, j, 'layers_per_block', isInt, 2),
    attentionHeads: heads,
    crossAttentionDim: need(path, j, 'cross_attention_dim', isInt, 768),
    normGroups: need(path, j, 'norm_num_groups', isInt, 32),
    normEps: need(path, j, 'norm_eps', isNum, 1e-5),
    useLinearProjection: j.use_linear_projection === true,
    flipSinToCos: j.flip_sin_to_cos !== false,
    freqShift: need(path, j, 'freq_shift', (v) => Number.isInteger(v), 0),
  };
}

function textConfigFrom(path: string, j: Record<string, any>): ClipTextConfig {
  const act = need<string>(path, j, 'hidden_act', (v) => v === 'quick_gelu' || v === 'gelu', 'quick_gelu');
  return {
    vocabSize: need(path, j, 'vocab_size', isInt),
    hiddenSize: need(path, j, 'hidden_size', isInt),
    intermediateSize: need(path, j, 'intermediate_size', isInt),
    numLayers: need(path, j, 'num_hidden_layers', isInt),
    numHeads: need(path, j, 'num_attention_heads', isInt),
    maxPositions: need(path, j, 'max_position_embeddings', isInt, 77),
    hiddenAct: act as ClipTextConfig['hiddenAct'],
    layerNormEps: need(path, j, 'layer_norm_eps', isNum, 1e-5),
  };
}

function vaeConfigFrom(path: string, j: Record<string, any>): VaeConfig {
  return {
    inChannels: need(path, j, 'in_channels', isInt, 3),
    outChannels: need(path, j, 'out_channels', isInt, 3),
    blockOutChannels: need(path, j, 'block_out_channels', isIntList),
    layersPerBlock: need(path, j, 'layers_per_block', isInt, 2),
    latentChannels: need(path, j, 'latent_channels', isInt, 4),
    normGroups: need(path, j, 'norm_num_groups', isInt, 32),
    scalingFactor: need(path, j, 'scaling_factor', isNum, 0.18215),
  };
}

function schedulerConfigFrom(folder: string): SchedulerConfig {
  const path = join(folder, 'scheduler', 'scheduler_config.json');
  if (!existsSync(path)) return SD15.scheduler;
  const j = readJson(path);
  return {
    numTrainTimesteps: need(path, j, 'num_train_timesteps', isInt, 1000),
    betaStart: need(path, j, 'beta_start', isNum, 0.00085),
    betaEnd: need(path, j, 'beta_end', isNum, 0.012),
    betaSchedule: need(path, j, 'beta_schedule', (v) => v === 'scaled_linear' || v === 'linear', 'scaled_linear'),
    predictionType: need(path, j, 'prediction_type', (v) => v === 'epsilon' || v === 'v_prediction', 'epsilon'),
  };
}

/** Older diffusers VAEs name the mid attention query/key/value/proj_attn. */
function modernVaeName(name: string): string {
  return name.replace(/attentions\.0\.(query|key|value|proj_attn)\./, (_, p: string) =>
    `attentions.0.${({ query: 'to_q', key: 'to_k', value: 'to_v', proj_attn: 'to_out.0' } as Record<string, string>)[p]}.`);
}

/** A diffusers folder: model_index.json (optional), unet/, vae/, text_encoder/, tokenizer/. */
export async function loadDiffusersFolder(folder: string, opts: LoadOptions = {}): Promise<LoadedSd> {
  const index = existsSync(join(folder, 'model_index.json')) ? readJson(join(folder, 'model_index.json')) : {};
  const cls = String(index._class_name ?? '');
  if (/XL/.test(cls)) throw new CheckpointError(folder, `this is an SDXL checkpoint (${cls}), not Stable Diffusion 1.x`, 'sdxl');
  if (/Flux/.test(cls)) throw new CheckpointError(folder, `this is a Flux checkpoint (${cls}), not Stable Diffusion 1.x`, 'flux1');
  if (/StableDiffusion3/.test(cls)) throw new CheckpointError(folder, `this is a Stable Diffusion 3 checkpoint (${cls}), not Stable Diffusion 1.x`, 'sd3');
  const unetJson = readJson(join(folder, 'unet', 'config.json'));
  if (unetJson.addition_embed_type) throw new CheckpointError(join(folder, 'unet', 'config.json'), `this is an SDXL checkpoint (addition_embed_type '${unetJson.addition_embed_type}'), not Stable Diffusion 1.x`, 'sdxl');
  if (unetJson.cross_attention_dim === 1024) throw new CheckpointError(join(folder, 'unet', 'config.json'), 'this is a Stable Diffusion 2.x checkpoint (cross_attention_dim 1024), not Stable Diffusion 1.x', 'sd2');
  const cfg: SdConfig = opts.config ?? {
    name: String(index._name_or_path ?? 'diffusers'),
    sampleSize: need(join(folder, 'vae', 'config.json'), readJson(join(folder, 'vae', 'config.json')), 'sample_size', isInt, 512),
    unet: unetConfigFrom(join(folder, 'unet', 'config.json'), unetJson),
    text: textConfigFrom(join(folder, 'text_encoder', 'config.json'), readJson(join(folder, 'text_encoder', 'config.json'))),
    vae: vaeConfigFrom(join(folder, 'vae', 'config.json'), readJson(join(folder, 'vae', 'config.json'))),
    scheduler: schedulerConfigFrom(folder),
  };
  const found = new Map<Component, Map<string, TensorLocation>>();
  const readers: SafetensorsReader[] = [];
  try {
    for (const c of COMPONENTS) {
      const file = WEIGHT_FILES[c].map((f) => join(folder, c, f)).find((f) => existsSync(f));
      if (!file) throw new CheckpointError(join(folder, c), `no ${WEIGHT_FILES[c][0]} (only .safetensors weights are read)`);
      const reader = await openSafetensors(file);
      readers.push(reader);
      if (c === 'unet') refuseOtherFamily(file, reader.names(), (k) => (reader.has(k) ? reader.entry(k).shape : undefined), ['sd1', 'unet-only']);
      const m = new Map<string, TensorLocation>();
      for (const key of reader.names()) {
        if (IGNORED_KEYS[c].test(key)) continue;
        m.set(c === 'vae' ? modernVaeName(key) : key, { file, key, entry: reader.entry(key) });
      }
      found.set(c, m);
    }
    checkTensors(folder, cfg, found, (c, n) => `${c}/${n}`);
  } finally {
    for (const r of readers) await r.close();
  }
  const tokDir = join(folder, 'tokenizer');
  const tokenizer = opts.tokenizer ?? (existsSync(join(tokDir, 'vocab.json')) ? ClipTokenizer.fromFolder(tokDir) : undefined);
  return makeLoaded(cfg, found, opts, folder, tokenizer);
}

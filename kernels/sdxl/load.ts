// Loads SDXL (and its fine-tunes: Pony, Illustrious, NoobAI… have the base layout) from a single file
// in the SGM layout or a diffusers folder (unet/, text_encoder/, text_encoder_2/, vae/ with their
// config.json). Every tensor is checked by name and shape before anything is built; the refiner and
// other families are named and refused. Weights stay lazy: read (or left on disk as external data)
// when a graph asks for them.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openSafetensors, type SafetensorsReader, type TensorEntry } from '../io/safetensors';
import type { Tensor } from '../tensor';
import { transpose } from '../ops/shape-and-reduce';
import type { WeightSource } from '../nn/weights';
import { CheckpointWeights, type CheckpointWeightsOptions, type TensorLocation } from '../sd/checkpoint-weights';
import { CheckpointError } from '../sd/load';
import { detectFamily, FAMILY_LABELS, withArticle } from '../families/detect';
import { SDXL_BASE, checkSdxlConfig, type SdxlConfig } from './config';
import { sdxlComponentTensors, SDXL_COMPONENTS, SdxlKeyMap, isIgnoredSdxlKey, type SdxlComponent } from './keys';
import { SDXL_CONFIG_METADATA_KEY } from './save';

export interface LoadedSdxl {
  family: 'sdxl';
  config: SdxlConfig;
  unet: WeightSource;
  /** CLIP-L (text_encoder). */
  textL: WeightSource;
  /** OpenCLIP bigG (text_encoder_2), served under transformers names whatever the file's layout. */
  textG: WeightSource;
  vae: WeightSource;
  /** Storage dtype(s) of the weights, e.g. ['F16']. */
  dtypes: string[];
  /** Parameters per part, counted from the tensors found. */
  params: Record<SdxlComponent, number>;
  /** Where it came from: the diffusers folder (its tokenizer/ and tokenizer_2/ live there) or the file. */
  layout: 'single-file' | 'diffusers';
  close(): void;
}

export interface SdxlLoadOptions extends CheckpointWeightsOptions {
  /** Overrides the config found in the file (metadata), the folder (config.json) or assumed (SDXL 1.0 base). */
  config?: SdxlConfig;
}

/** Serves some tensors transposed (bigG's text_projection is stored [in, out] in single files). */
class TransposedWeights implements WeightSource {
  constructor(readonly inner: CheckpointWeights, readonly transposed: ReadonlySet<string>) {}
  get(path: string, shape: readonly number[]): Tensor {
    if (!this.transposed.has(path)) return this.inner.get(path, shape);
    if (shape.length !== 2) throw new Error(`${this.inner.label}: '${path}' is stored transposed and must be 2-D, asked for [${shape.join(',')}]`);
    return transpose(this.inner.get(path, [shape[1], shape[0]]), [1, 0]);
  }
  unused() { return this.inner.unused(); }
  close() { this.inner.close(); }
}

/** Loads a `.safetensors` single file or a diffusers folder. */
export async function loadSdxl(path: string, opts: SdxlLoadOptions = {}): Promise<LoadedSdxl> {
  if (!existsSync(path)) throw new CheckpointError(path, 'no such file or folder');
  return statSync(path).isDirectory() ? loadSdxlDiffusersFolder(path, opts) : loadSdxlSingleFile(path, opts);
}

function refuseOtherFamily(path: string, keys: string[], shapeOf: (k: string) => readonly number[] | undefined) {
  const { family, reason } = detectFamily(keys, shapeOf);
  if (family === 'sdxl') return;
  const label = FAMILY_LABELS[family];
  const what = family === 'unknown' ? 'not an SDXL checkpoint' : `this is ${withArticle(label)} ${family === 'lora' ? 'file' : 'checkpoint'}, not SDXL`;
  throw new CheckpointError(path, `${what} (${reason})`);
}

type Found = Map<SdxlComponent, Map<string, TensorLocation>>;

/** Equal up to trailing 1s: some tools store the VAE attention projections as [C, C], others as 1×1 convs. */
function sameShape(a: readonly number[], b: readonly number[]): boolean {
  const strip = (s: readonly number[]) => { const r = [...s]; while (r.length > 2 && r[r.length - 1] === 1) r.pop(); return r.join(); };
  return strip(a) === strip(b);
}

/** Older diffusers VAEs name the mid attention query/key/value/proj_attn. */
function modernVaeName(name: string): string {
  const to: Record<string, string> = { query: 'to_q', key: 'to_k', value: 'to_v', proj_attn: 'to_out.0' };
  return name.replace(/attentions\.0\.(query|key|value|proj_attn)\./, (_, p: string) => `attentions.0.${to[p]}.`);
}

/** Lists missing, unexpected and mis-shaped tensors by their name in the file; throws if there is any. */
function checkTensors(path: string, cfg: SdxlConfig, found: Found, unexpected: string[], describe: (c: SdxlComponent, n: string) => string, shapeInFile: (c: SdxlComponent, n: string, s: number[]) => number[]) {
  const problems: string[] = unexpected.map((k) => `unexpected tensor '${k}'`);
  for (const c of SDXL_COMPONENTS) {
    const want = sdxlComponentTensors(cfg, c).shapes;
    const have = found.get(c)!;
    for (const [name, shape] of want) {
      const loc = have.get(name);
      const expected = shapeInFile(c, name, shape);
      if (!loc) { problems.push(`missing tensor '${describe(c, name)}' [${expected.join(',')}]`); continue; }
      if (!sameShape(loc.entry.shape, expected)) problems.push(`tensor '${loc.key}' has shape [${loc.entry.shape.join(',')}], expected [${expected.join(',')}]`);
    }
    for (const [name, loc] of have) if (!want.has(name)) problems.push(`unexpected tensor '${loc.key}'`);
  }
  if (problems.length) {
    const shown = problems.slice(0, 12).join('; ');
    throw new CheckpointError(path, `${problems.length} tensor problem(s) for SDXL '${cfg.name}': ${shown}${problems.length > 12 ? `; … and ${problems.length - 12} more` : ''}`);
  }
}

function dtypesOf(found: Found) {
  const s = new Set<string>();
  for (const m of found.values()) for (const l of m.values()) s.add(l.entry.dtype);
  return [...s].sort();
}

function makeLoaded(cfg: SdxlConfig, found: Found, opts: SdxlLoadOptions, label: string, layout: LoadedSdxl['layout'], transposed: ReadonlySet<string> = new Set()): LoadedSdxl {
  const w = (c: SdxlComponent) => new CheckpointWeights(found.get(c)!, `${label} ${c}`, { external: opts.external });
  const unet = w('unet'), textL = w('text_encoder'), textG = new TransposedWeights(w('text_encoder_2'), transposed), vae = w('vae');
  const params = Object.fromEntries(SDXL_COMPONENTS.map((c) => [c, [...sdxlComponentTensors(cfg, c).shapes.values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0)])) as Record<SdxlComponent, number>;
  return {
    family: 'sdxl', config: cfg, unet, textL, textG, vae, dtypes: dtypesOf(found), params, layout,
    close() { unet.close(); textL.close(); textG.close(); vae.close(); },
  };
}

function configFromMetadata(path: string, meta: Record<string, string>): SdxlConfig | undefined {
  const text = meta[SDXL_CONFIG_METADATA_KEY];
  if (text === undefined) return undefined;
  try { return JSON.parse(text) as SdxlConfig; }
  catch (e) { throw new CheckpointError(path, `metadata '${SDXL_CONFIG_METADATA_KEY}' is not valid JSON: ${(e as Error).message}`); }
}

/** Rows `part`·n…(part+1)·n of a fused [3n, …] tensor: a contiguous byte range of the file. */
function thirdOf(entry: TensorEntry, part: number): TensorEntry {
  const third = entry.byteLength / 3;
  const shape = [entry.shape[0] / 3, ...entry.shape.slice(1)];
  const begin = entry.dataOffsets[0] + part * third;
  return { ...entry, shape, dataOffsets: [begin, begin + third], fileOffset: entry.fileOffset + part * third, byteLength: third };
}

/** A single file: `model.diffusion_model.*`, `conditioner.embedders.{0,1}.*`, `first_stage_model.*`. */
export async function loadSdxlSingleFile(path: string, opts: SdxlLoadOptions = {}): Promise<LoadedSdxl> {
  const reader = await openSafetensors(path);
  try {
    const keys = reader.names();
    refuseOtherFamily(path, keys, (k) => (reader.has(k) ? reader.entry(k).shape : undefined));
    const cfg = opts.config ?? configFromMetadata(path, reader.metadata) ?? SDXL_BASE;
    checkSdxlConfig(cfg);
    const map = new SdxlKeyMap(cfg);
    const found: Found = new Map(SDXL_COMPONENTS.map((c) => [c, new Map()]));
    const transposed = new Set<string>();
    const unexpected: string[] = [];
    for (const key of keys) {
      const parts = map.toDiffusers(key);
      if (!parts) { if (!isIgnoredSdxlKey(key)) unexpected.push(key); continue; }
      const entry = reader.entry(key);
      const fileShape = map.singleFileShape(key)!;
      if (!sameShape(entry.shape, fileShape)) {
        // Reported by checkTensors (under the first diffusers name it holds).
        found.get(parts[0].component)!.set(parts[0].name, { file: path, key, entry });
        continue;
      }
      parts.forEach((p, i) => {
        const slot = map.toSingleFile(p.component, p.name)!;
        if (slot.transpose) transposed.add(p.name);
        found.get(p.component)!.set(p.name, { file: path, key, entry: parts.length === 3 ? thirdOf(entry, i) : entry });
      });
    }
    checkTensors(path, cfg, found, unexpected, (c, n) => map.toSingleFile(c, n)?.key ?? n, (c, n, s) => {
      const slot = map.toSingleFile(c, n)!;
      // Found entries hold single-file shapes except the fused thirds (already split to the diffusers shape).
      return slot.part !== undefined ? s : map.singleFileShape(slot.key)!;
    });
    return makeLoaded(cfg, found, opts, path, 'single-file', transposed);
  } finally {
    await reader.close();
  }
}

// --- diffusers folders ---------------------------------------------------------------------------

const WEIGHT_FILES: Record<SdxlComponent, string[]> = {
  unet: ['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.fp16.safetensors'],
  vae: ['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.fp16.safetensors'],
  text_encoder: ['model.safetensors', 'model.fp16.safetensors'],
  text_encoder_2: ['model.safetensors', 'model.fp16.safetensors'],
};

function readJson(path: string): Record<string, any> {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch { throw new CheckpointError(path, 'missing (a diffusers folder needs each part\'s config.json)'); }
  try { return JSON.parse(text); } catch (e) { throw new CheckpointError(path, `not valid JSON: ${(e as Error).message}`); }
}

function field<T>(path: string, j: Record<string, any>, name: string, ok: (v: any) => boolean, fallback?: T): T {
  const v = j[name];
  if (v === undefined && fallback !== undefined) return fallback;
  if (!ok(v)) throw new CheckpointError(path, `field '${name}' is ${JSON.stringify(v)}`);
  return v as T;
}
const isInt = (v: any) => Number.isInteger(v) && v > 0;
const isIntList = (v: any) => Array.isArray(v) && v.length > 0 && v.every(isInt);
const isNum = (v: any) => typeof v === 'number' && Number.isFinite(v);

/** SDXL config from the folder's config.json files (SDXL base values where a field is absent). */
function configFromFolder(folder: string): SdxlConfig {
  const up = join(folder, 'unet', 'config.json');
  const u = readJson(up);
  if (u.addition_embed_type !== 'text_time') throw new CheckpointError(up, `addition_embed_type is ${JSON.stringify(u.addition_embed_type)}, not 'text_time': not an SDXL UNet`);
  const channels = field<number[]>(up, u, 'block_out_channels', isIntList);
  const heads = u.attention_head_dim ?? u.num_attention_heads;
  const headList: number[] = Array.isArray(heads) ? heads : channels.map(() => heads);
  if (!isIntList(headList) || headList.length !== channels.length) throw new CheckpointError(up, `field 'attention_head_dim' is ${JSON.stringify(heads)}`);
  const headDims = new Set(channels.map((c, i) => c / headList[i]));
  if (headDims.size !== 1) throw new CheckpointError(up, `heads ${JSON.stringify(headList)} give different head widths per level; SDXL has one`);
  const depthRaw = u.transformer_layers_per_block ?? 1;
  const depth: number[] = Array.isArray(depthRaw) ? depthRaw : channels.map(() => depthRaw);
  const sizeDim = field<number>(up, u, 'addition_time_embed_dim', isInt, 256);
  const text = (c: 'text_encoder' | 'text_encoder_2') => {
    const p = join(folder, c, 'config.json');
    const j = readJson(p);
    return {
      vocabSize: field<number>(p, j, 'vocab_size', isInt), hiddenSize: field<number>(p, j, 'hidden_size', isInt),
      intermediateSize: field<number>(p, j, 'intermediate_size', isInt), numLayers: field<number>(p, j, 'num_hidden_layers', isInt),
      numHeads: field<number>(p, j, 'num_attention_heads', isInt), maxPositions: field<number>(p, j, 'max_position_embeddings', isInt, 77),
      hiddenAct: field<'quick_gelu' | 'gelu'>(p, j, 'hidden_act', (v) => v === 'quick_gelu' || v === 'gelu', c === 'text_encoder' ? 'quick_gelu' : 'gelu'),
      layerNormEps: field<number>(p, j, 'layer_norm_eps', isNum, 1e-5),
      projectionDim: field<number>(p, j, 'projection_dim', isInt, field<number>(p, j, 'hidden_size', isInt)),
    };
  };
  const { projectionDim: _unused, ...textL } = text('text_encoder');
  const textG = text('text_encoder_2');
  const vp = join(folder, 'vae', 'config.json');
  const v = readJson(vp);
  const cfg: SdxlConfig = {
    name: 'diffusers',
    sampleSize: field<number>(vp, v, 'sample_size', isInt, 1024),
    unet: {
      inChannels: field(up, u, 'in_channels', isInt, 4), outChannels: field(up, u, 'out_channels', isInt, 4),
      blockOutChannels: channels,
      downBlockCrossAttention: field<string[]>(up, u, 'down_block_types', Array.isArray).map((t) => t.startsWith('CrossAttn')),
      layersPerBlock: field(up, u, 'layers_per_block', isInt, 2),
      attentionHeads: 0, attentionHeadDim: [...headDims][0],
      transformerDepth: depth, midTransformerDepth: depth[depth.length - 1],
      crossAttentionDim: field(up, u, 'cross_attention_dim', isInt),
      normGroups: field(up, u, 'norm_num_groups', isInt, 32), normEps: field(up, u, 'norm_eps', isNum, 1e-5),
      useLinearProjection: u.use_linear_projection === true,
      flipSinToCos: u.flip_sin_to_cos !== false, freqShift: field(up, u, 'freq_shift', (x) => Number.isInteger(x), 0),
      addEmbeddingInputDim: field(up, u, 'projection_class_embeddings_input_dim', isInt),
    },
    sizeEmbeddingDim: sizeDim,
    textL,
    textG,
    vae: {
      inChannels: field(vp, v, 'in_channels', isInt, 3), outChannels: field(vp, v, 'out_channels', isInt, 3),
      blockOutChannels: field(vp, v, 'block_out_channels', isIntList), layersPerBlock: field(vp, v, 'layers_per_block', isInt, 2),
      latentChannels: field(vp, v, 'latent_channels', isInt, 4), normGroups: field(vp, v, 'norm_num_groups', isInt, 32),
      scalingFactor: field(vp, v, 'scaling_factor', isNum, SDXL_BASE.vae.scalingFactor), forceUpcast: v.force_upcast !== false,
    },
    scheduler: SDXL_BASE.scheduler,
  };
  if (cfg.unet.addEmbeddingInputDim === textG.projectionDim + 5 * sizeDim) {
    throw new CheckpointError(up, `this is an SDXL refiner UNet (label_emb input ${cfg.unet.addEmbeddingInputDim}: aesthetic-score conditioning), not SDXL base`);
  }
  return cfg;
}

/** A diffusers folder: model_index.json, unet/, text_encoder/, text_encoder_2/, vae/ (tokenizer/, tokenizer_2/). */
export async function loadSdxlDiffusersFolder(folder: string, opts: SdxlLoadOptions = {}): Promise<LoadedSdxl> {
  const index = existsSync(join(folder, 'model_index.json')) ? readJson(join(folder, 'model_index.json')) : {};
  const cls = String(index._class_name ?? '');
  if (cls && !/XL/.test(cls)) throw new CheckpointError(folder, `model_index.json names ${cls}, not an SDXL pipeline`);
  if (!existsSync(join(folder, 'text_encoder'))) {
    throw new CheckpointError(folder, existsSync(join(folder, 'text_encoder_2'))
      ? 'this is an SDXL refiner (text_encoder_2 only, no CLIP-L text_encoder), not SDXL base'
      : 'no text_encoder/ folder (an SDXL folder has unet/, text_encoder/, text_encoder_2/, vae/)');
  }
  const cfg = opts.config ?? configFromFolder(folder);
  checkSdxlConfig(cfg);
  const found: Found = new Map();
  const readers: SafetensorsReader[] = [];
  try {
    for (const c of SDXL_COMPONENTS) {
      const file = WEIGHT_FILES[c].map((f) => join(folder, c, f)).find((f) => existsSync(f));
      if (!file) throw new CheckpointError(join(folder, c), `no ${WEIGHT_FILES[c][0]} (only .safetensors weights are read)`);
      const reader = await openSafetensors(file);
      readers.push(reader);
      const m = new Map<string, TensorLocation>();
      for (const key of reader.names()) {
        if (isIgnoredSdxlKey(key)) continue;
        m.set(c === 'vae' ? modernVaeName(key) : key, { file, key, entry: reader.entry(key) });
      }
      found.set(c, m);
    }
    checkTensors(folder, cfg, found, [], (c, n) => `${c}/${n}`, (_c, _n, s) => s);
  } finally {
    for (const r of readers) await r.close();
  }
  return makeLoaded(cfg, found, opts, folder, 'diffusers');
}

/**
 * The UNet alone, from a file holding it (ComfyUI's models/unet files, with or without the
 * `model.diffusion_model.` prefix, a diffusers unet/ file, or a whole single file whose other parts are
 * left alone). Config from the file's metadata, the option, or SDXL 1.0 base.
 */
export async function loadSdxlUnet(path: string, opts: SdxlLoadOptions = {}): Promise<{ config: SdxlConfig; unet: CheckpointWeights; dtypes: string[] }> {
  const reader = await openSafetensors(path);
  try {
    const cfg = opts.config ?? configFromMetadata(path, reader.metadata) ?? SDXL_BASE;
    checkSdxlConfig(cfg);
    const map = new SdxlKeyMap(cfg);
    const want = sdxlComponentTensors(cfg, 'unet').shapes;
    const found = new Map<string, TensorLocation>();
    const unexpected: string[] = [];
    const prefix = 'model.diffusion_model.';
    for (const key of reader.names()) {
      const entry = reader.entry(key);
      if (want.has(key)) { found.set(key, { file: path, key, entry }); continue; }
      const parts = map.toDiffusers(key) ?? map.toDiffusers(prefix + key);
      if (parts?.[0].component === 'unet') { found.set(parts[0].name, { file: path, key, entry }); continue; }
      if (parts || isIgnoredSdxlKey(key)) continue; // the text encoders and VAE of a whole single file
      unexpected.push(key);
    }
    const all: Found = new Map(SDXL_COMPONENTS.map((c) => [c, c === 'unet' ? found : new Map()]));
    const problems: string[] = [];
    for (const [name, shape] of want) {
      const loc = found.get(name);
      const fileShape = map.singleFileShape(map.toSingleFile('unet', name)!.key)!;
      if (!loc) problems.push(`missing tensor '${name}' [${shape.join(',')}]`);
      else if (!sameShape(loc.entry.shape, fileShape)) problems.push(`tensor '${loc.key}' has shape [${loc.entry.shape.join(',')}], expected [${fileShape.join(',')}]`);
    }
    problems.push(...unexpected.map((k) => `unexpected tensor '${k}'`));
    if (problems.length) throw new CheckpointError(path, `${problems.length} tensor problem(s) for the SDXL '${cfg.name}' UNet: ${problems.slice(0, 12).join('; ')}`);
    return { config: cfg, unet: new CheckpointWeights(found, `${path} unet`, { external: opts.external }), dtypes: dtypesOf(all) };
  } finally {
    await reader.close();
  }
}

// Loads FLUX.2 [klein] and [dev] (and FLUX.1, below) from the layouts people have it in:
//   a diffusers folder   transformer/ (diffusers names, maybe sharded), text_encoder/ (Qwen3 for klein,
//                        Mistral3 for dev; sharded), vae/, tokenizer/tokenizer.json
//   separate files       (ComfyUI's models/diffusion_models, text_encoders, vae) chosen one by one: a BFL
//                        single-file transformer (`double_blocks.*`, bare or under model.diffusion_model.),
//                        a Qwen3 or Mistral Small text encoder file, BFL's ae.safetensors (ldm names + bn statistics)
// Sizes are read from the tensors (detectFluxTransformer, qwen3/mistralConfigFromShapes, the VAE's convs), so the
// tiny model loads through the same code. Weights stay lazy: read when a graph asks for them.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openSafetensors } from '../io/safetensors';
import type { Tensor } from '../tensor';
import { concat, slice } from '../ops/shape-and-reduce';
import type { WeightSource, WeightUse } from '../nn/weights';
import { CheckpointWeights, type TensorLocation } from '../sd/checkpoint-weights';
import { CheckpointError } from '../sd/load';
import { SD15, type ClipTextConfig, type VaeConfig } from '../sd/config';
import { T5_XXL, t5SizesFromShapes, type T5Config } from '../text/t5';
import { vaeToLdm } from '../sd/keys/single-file';
import { detectFluxTransformer, type FluxDetection } from './detect';
import type { FluxTransformerConfig } from './config';
import { fluxKeyMapping } from './keys';
import type { Qwen3Config } from './qwen3';
import { Qwen3PromptTokenizer } from './qwen3-tokenizer';
import type { LlamaDecoderConfig } from '../text/llama-decoder';
import { mistralConfigFromShapes, mistralLanguageModelName, mistralStatedSizes, type MistralStatedSizes } from './mistral';
import { MistralPromptTokenizer } from './mistral-tokenizer';
import { embeddedTekkenTokenizerJson } from './tekken';
import { FLUX1_VAE, FLUX2_VAE, QuantConvsOrIdentity } from './vae';

/** Every tensor of a file, or of all `.safetensors` files of a folder (shards), by name. */
export async function indexSafetensors(path: string): Promise<{ tensors: Map<string, TensorLocation>; metadata: Record<string, string>; dtypes: Set<string>; params: number }> {
  if (!existsSync(path)) throw new CheckpointError(path, 'no such file or folder');
  const files = statSync(path).isDirectory()
    ? readdirSync(path).filter((f) => f.endsWith('.safetensors')).sort().map((f) => join(path, f))
    : [path];
  if (files.length === 0) throw new CheckpointError(path, 'the folder holds no .safetensors file');
  const tensors = new Map<string, TensorLocation>();
  const dtypes = new Set<string>();
  let params = 0;
  let metadata: Record<string, string> = {};
  for (const file of files) {
    const r = await openSafetensors(file);
    try {
      metadata = { ...metadata, ...r.metadata };
      for (const entry of r.header.entries) {
        if (tensors.has(entry.name)) throw new CheckpointError(file, `tensor '${entry.name}' is also in ${tensors.get(entry.name)!.file}`);
        tensors.set(entry.name, { file, key: entry.name, entry });
        dtypes.add(entry.dtype);
        params += entry.shape.reduce((a, b) => a * b, 1);
      }
    } finally {
      await r.close();
    }
  }
  return { tensors, metadata, dtypes, params };
}

/** The tensors under `prefix`, renamed without it. */
function underPrefix(tensors: Map<string, TensorLocation>, prefix: string): Map<string, TensorLocation> {
  if (!prefix) return tensors;
  return new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
}

/**
 * Serves BFL names from a diffusers-layout transformer: fused projections are the concatenation of
 * their parts (folded into one initializer by ORT), the final modulation's halves swapped back.
 */
export class DiffusersFluxWeights implements WeightSource {
  private readonly map: Map<string, ReturnType<typeof fluxKeyMapping>[number]>;
  constructor(readonly inner: CheckpointWeights, cfg: FluxTransformerConfig) {
    this.map = new Map(fluxKeyMapping(cfg).map((m) => [m.bfl, m]));
  }
  get(path: string, shape: readonly number[], use?: WeightUse): Tensor {
    const m = this.map.get(path);
    if (!m) throw new Error(`${this.inner.label}: no diffusers name for '${path}'`);
    const inner: WeightSource = this.inner;
    const parts = m.diffusers.map((p) => inner.get(p.key, [p.rows[1] - p.rows[0], ...shape.slice(1)], use));
    const t = parts.length === 1 ? parts[0] : concat(parts, 0);
    if (!m.swapHalves) return t;
    const half = shape[0] / 2;
    return concat([slice(t, [half], [shape[0]], [0]), slice(t, [0], [half], [0])], 0);
  }
}

/** Qwen3 sizes from a text encoder's tensor shapes (transformers names, optionally without `model.`). */
export function qwen3ConfigFromShapes(shapeOf: (k: string) => readonly number[] | undefined, keys: readonly string[], maxLength = 512): Qwen3Config | undefined {
  const embed = shapeOf('model.embed_tokens.weight');
  const qNorm = shapeOf('model.layers.0.self_attn.q_norm.weight');
  const q = shapeOf('model.layers.0.self_attn.q_proj.weight');
  const k = shapeOf('model.layers.0.self_attn.k_proj.weight');
  const gate = shapeOf('model.layers.0.mlp.gate_proj.weight');
  if (!embed || !qNorm || !q || !k || !gate) return undefined;
  let layers = 0;
  for (const key of keys) { const m = /^model\.layers\.(\d+)\./.exec(key); if (m) layers = Math.max(layers, Number(m[1]) + 1); }
  const headDim = qNorm[0];
  // klein reads hidden states 9, 18, 27 of the 36-layer Qwen3s; a smaller encoder (the tiny one) thirds its depth.
  const outputLayers = layers >= 27 ? [9, 18, 27] : [1, 2, 3].map((i) => Math.round((i * layers) / 3));
  return {
    name: `qwen3-${embed[1]}`, vocabSize: embed[0], hiddenSize: embed[1], intermediateSize: gate[0], numLayers: layers,
    numHeads: q[0] / headDim, numKvHeads: k[0] / headDim, headDim, ropeTheta: 1_000_000, rmsNormEps: 1e-6, outputLayers, maxLength, qkNorm: true, padding: 'right',
  };
}

/** Serves diffusers VAE names from a file in BFL's / ldm's layout (`encoder.down.0.block.0…`, `bn.*`). */
class LdmVaeWeights implements WeightSource {
  constructor(readonly inner: CheckpointWeights, readonly cfg: VaeConfig) {}
  get(path: string, shape: readonly number[], use?: WeightUse): Tensor {
    const inner: WeightSource = this.inner;
    return inner.get(path.startsWith('bn.') ? path : vaeToLdm(this.cfg, path), shape, use);
  }
}

/** VAE sizes from its tensors (either layout) over `base`; the group count comes from the file's metadata when stated. */
function vaeSizesFromShapes(shapeOf: (k: string) => readonly number[] | undefined, keys: readonly string[], metadata: Record<string, string>, base: VaeConfig): { config: VaeConfig; layout: 'ldm' | 'diffusers' } | undefined {
  const ldm = keys.includes('encoder.down.0.block.0.conv1.weight');
  const conv = (i: number) => shapeOf(ldm ? `encoder.down.${i}.block.0.conv1.weight` : `encoder.down_blocks.${i}.resnets.0.conv1.weight`);
  const moments = shapeOf('encoder.conv_out.weight'); // mean and log-variance: 2 × latent channels
  if (!conv(0) || !moments) return undefined;
  const blockOutChannels: number[] = [];
  for (let i = 0; conv(i); i++) blockOutChannels.push(conv(i)![0]);
  let layersPerBlock = 0;
  while (keys.includes(ldm ? `encoder.down.0.block.${layersPerBlock}.conv1.weight` : `encoder.down_blocks.0.resnets.${layersPerBlock}.conv1.weight`)) layersPerBlock++;
  const groups = Number(metadata.loragraph_vae_norm_groups ?? base.normGroups);
  return { config: { ...base, blockOutChannels, layersPerBlock, latentChannels: moments[0] / 2, normGroups: groups }, layout: ldm ? 'ldm' : 'diffusers' };
}

/** FLUX.2 VAE sizes from its tensors (either layout); it must carry the BatchNorm statistics. */
export function flux2VaeConfigFromShapes(shapeOf: (k: string) => readonly number[] | undefined, keys: readonly string[], metadata: Record<string, string>): { config: VaeConfig; layout: 'ldm' | 'diffusers' } | undefined {
  if (!shapeOf('bn.running_mean')) return undefined;
  return vaeSizesFromShapes(shapeOf, keys, metadata, FLUX2_VAE);
}

const layerCount = (keys: readonly string[], re: RegExp) => keys.reduce((n, k) => { const m = re.exec(k); return m ? Math.max(n, Number(m[1]) + 1) : n; }, 0);

/**
 * CLIP text encoder sizes from its tensors (transformers names). Heads are not in any shape: CLIP-L's are 64
 * wide, another width states its count as `loragraph_num_heads`; undefined when neither tells.
 */
export function clipConfigFromShapes(shapeOf: (k: string) => readonly number[] | undefined, keys: readonly string[], metadata: Record<string, string> = {}): ClipTextConfig | undefined {
  const tok = shapeOf('text_model.embeddings.token_embedding.weight');
  const pos = shapeOf('text_model.embeddings.position_embedding.weight');
  const fc1 = shapeOf('text_model.encoder.layers.0.mlp.fc1.weight');
  if (!tok || !pos || !fc1) return undefined;
  const numHeads = Number(metadata.loragraph_num_heads ?? tok[1] / 64);
  if (!(Number.isInteger(numHeads) && numHeads >= 1)) return undefined;
  return { ...SD15.text, vocabSize: tok[0], hiddenSize: tok[1], intermediateSize: fc1[0], numLayers: layerCount(keys, /^text_model\.encoder\.layers\.(\d+)\./), numHeads, maxPositions: pos[0] };
}

/** T5 v1.1 encoder sizes from its tensors (transformers names; the relative-position table in block 0 gives the heads). */
export function t5ConfigFromShapes(shapeOf: (k: string) => readonly number[] | undefined, keys: readonly string[]): T5Config | undefined {
  const sizes = t5SizesFromShapes(shapeOf, keys);
  if (!sizes) return undefined;
  const xxl = (Object.keys(sizes) as (keyof typeof sizes)[]).every((k) => sizes[k] === T5_XXL[k]);
  return { ...T5_XXL, ...sizes, name: xxl ? T5_XXL.name : `t5-${sizes.dModel}` };
}

/** The transformer of a file or folder, detected and served under BFL names whatever its layout. */
async function openTransformer(tPath: string): Promise<{ detection: FluxDetection; weights: WeightSource; close(): void; dtypes: Set<string>; params: number }> {
  const t = await indexSafetensors(tPath);
  const detection = detectFluxTransformer([...t.tensors.keys()], (k) => t.tensors.get(k)?.entry.shape);
  if (!detection) throw new CheckpointError(tPath, 'not a FLUX transformer: no img_in/x_embedder or double_stream_modulation tensors');
  const own = new CheckpointWeights(underPrefix(t.tensors, detection.prefix), tPath);
  const weights: WeightSource = detection.layout === 'bfl' ? own : new DiffusersFluxWeights(own, detection.config);
  // Parameters of the transformer alone (an all-in-one file also holds other parts under other prefixes).
  let params = 0;
  for (const [k, v] of t.tensors) if (k.startsWith(detection.prefix)) params += v.entry.shape.reduce((a, b) => a * b, 1);
  return { detection, weights, close: () => own.close(), dtypes: t.dtypes, params };
}

export type Flux2TextEncoderKind = 'qwen3' | 'mistral';
export type Flux2PromptTokenizer = Qwen3PromptTokenizer | MistralPromptTokenizer;

/**
 * A FLUX.2 text encoder file or folder, served under transformers' Llama names (`model.layers.N…`):
 * Qwen3 (q_norm tensors; ComfyUI's files may drop `model.`) or Mistral Small (ComfyUI's `model.*`,
 * transformers' `model.language_model.*` / `language_model.model.*`; vision tower and LM head left
 * unread). Sizes come from the tensors; the file's `loragraph_text_max_length` sets the prompt length.
 */
export async function openFlux2TextEncoder(path: string): Promise<{ kind: Flux2TextEncoderKind; config: LlamaDecoderConfig; weights: CheckpointWeights; dtypes: Set<string>; params: number }> {
  const te = await indexSafetensors(path);
  const maxLength = Number(te.metadata.loragraph_text_max_length ?? 512);
  const keys = [...te.tensors.keys()];
  const qwen = keys.some((k) => k.endsWith('self_attn.q_norm.weight'));
  let named: Map<string, TensorLocation>;
  if (qwen) named = keys.some((k) => k.startsWith('model.')) ? te.tensors : new Map([...te.tensors].map(([k, v]) => [`model.${k}`, v]));
  else named = new Map([...te.tensors].flatMap(([k, v]) => { const n = mistralLanguageModelName(k); return n ? [[n, v] as const] : []; }));
  const shapeOf = (k: string) => named.get(k)?.entry.shape;
  // A transformers folder's config.json states what the Mistral's tensors do not show (head width, RoPE theta, eps).
  const configJson = join(path, 'config.json');
  let stated: MistralStatedSizes = {};
  if (!qwen && statSync(path).isDirectory() && existsSync(configJson)) {
    try { stated = mistralStatedSizes(JSON.parse(readFileSync(configJson, 'utf8'))); } catch (e) { throw new CheckpointError(configJson, (e as Error).message); }
  }
  const config = qwen ? qwen3ConfigFromShapes(shapeOf, [...named.keys()], maxLength) : mistralConfigFromShapes(shapeOf, [...named.keys()], te.metadata, maxLength, stated);
  if (!config && Object.keys(stated).length) throw new CheckpointError(path, `config.json states ${stated.numHeads ?? '?'} heads and ${stated.numKvHeads ?? '?'} KV heads of width ${stated.headDim ?? '?'}; the q/k projections are [${shapeOf('model.layers.0.self_attn.q_proj.weight')}] / [${shapeOf('model.layers.0.self_attn.k_proj.weight')}]`);
  if (!config) throw new CheckpointError(path, 'not a Qwen3 text encoder, nor a Mistral Small one (FLUX.2 [klein] / [dev]): no model.embed_tokens / layers.0 q_proj / gate_proj tensors');
  // Parameters of what FLUX.2 reads (a whole Mistral3 checkpoint also holds a vision tower and an LM head).
  let params = 0;
  for (const v of named.values()) params += v.entry.shape.reduce((a, b) => a * b, 1);
  return { kind: qwen ? 'qwen3' : 'mistral', config, weights: new CheckpointWeights(named, path), dtypes: te.dtypes, params };
}

export interface Flux2Files {
  /** A BFL/ComfyUI single file, a diffusers transformer file or folder, or a whole diffusers folder. */
  transformer: string;
  /** A Qwen3 ([klein]) or Mistral Small ([dev]) file or folder (defaults to the diffusers folder's text_encoder/). */
  textEncoder?: string;
  /** The VAE file or folder (defaults to the diffusers folder's vae/). */
  vae?: string;
  /**
   * tokenizer.json, or a folder holding it (defaults to the diffusers folder's tokenizer/; for a Mistral
   * file with an embedded `tekken_model`, that one).
   */
  tokenizer?: string;
}

export interface LoadedFlux2 {
  transformerConfig: FluxTransformerConfig;
  detection: FluxDetection;
  transformer: WeightSource;
  text?: { config: LlamaDecoderConfig; weights: WeightSource; kind: Flux2TextEncoderKind };
  vae?: { config: VaeConfig; weights: WeightSource };
  tokenizer?: Flux2PromptTokenizer;
  dtypes: string[];
  /** Parameters per part id (transformer, text_encoder, vae), counted from the tensors found. */
  params: Record<string, number>;
  close(): void;
}

/** Loads what is given; parts not given are looked up in a diffusers folder's subfolders. */
export async function loadFlux2(files: Flux2Files): Promise<LoadedFlux2> {
  const root = files.transformer;
  const isDiffusersRoot = existsSync(root) && statSync(root).isDirectory() && existsSync(join(root, 'transformer'));
  const sub = (name: string) => (isDiffusersRoot && existsSync(join(root, name)) ? join(root, name) : undefined);
  const tPath = isDiffusersRoot ? join(root, 'transformer') : root;
  const opened = await openTransformer(tPath);
  const { detection } = opened;
  if (detection.config.generation !== 2) throw new CheckpointError(tPath, `this is a FLUX.1 transformer (${detection.config.name}): load it as FLUX.1`);
  const cfg = detection.config;
  const transformer = opened.weights;
  const closers = [() => opened.close()];
  const dtypes = new Set(opened.dtypes);
  const params: Record<string, number> = { transformer: opened.params };

  let text: LoadedFlux2['text'];
  const tePath = files.textEncoder ?? sub('text_encoder');
  if (tePath) {
    const te = await openFlux2TextEncoder(tePath);
    closers.push(() => te.weights.close());
    const width = te.config.hiddenSize * te.config.outputLayers.length;
    if (width !== cfg.contextDim) {
      throw new CheckpointError(tePath, `this ${te.kind === 'mistral' ? 'Mistral' : 'Qwen3'} gives ${width} features per token (${te.config.outputLayers.length} × ${te.config.hiddenSize}); the transformer takes ${cfg.contextDim} (${cfg.guidanceEmbed ? 'FLUX.2 [dev]: Mistral Small 3, 3 × 5120' : 'FLUX.2 [klein]: Qwen3, 3 × its width'})`);
    }
    te.dtypes.forEach((d) => dtypes.add(d));
    params.text_encoder = te.params;
    text = { config: te.config, weights: te.weights, kind: te.kind };
  }

  let vae: LoadedFlux2['vae'];
  const vPath = files.vae ?? sub('vae');
  if (vPath) {
    const v = await indexSafetensors(vPath);
    const found = flux2VaeConfigFromShapes((k) => v.tensors.get(k)?.entry.shape, [...v.tensors.keys()], v.metadata);
    if (!found) throw new CheckpointError(vPath, 'not a FLUX.2 VAE: no encoder convs or bn.running_mean');
    if (found.config.latentChannels * 4 !== cfg.inChannels) throw new CheckpointError(vPath, `this VAE has ${found.config.latentChannels} latent channels; the transformer takes ${cfg.inChannels / 4} (× 2×2 patches)`);
    const w = new CheckpointWeights(v.tensors, vPath);
    closers.push(() => w.close());
    v.dtypes.forEach((d) => dtypes.add(d));
    params.vae = v.params;
    const named: WeightSource = found.layout === 'ldm' ? new LdmVaeWeights(w, found.config) : w;
    const quant = new Set(['quant_conv.weight', 'quant_conv.bias', 'post_quant_conv.weight', 'post_quant_conv.bias'].filter((k) => v.tensors.has(k)));
    vae = { config: found.config, weights: new QuantConvsOrIdentity(named, quant) };
  }

  let tokenizer: Flux2PromptTokenizer | undefined;
  const tokPath = files.tokenizer ?? sub('tokenizer');
  // ComfyUI's Mistral files carry mistral_common's tekken.json: the tokenizer when no tokenizer.json is given.
  const tekken = !tokPath && text?.kind === 'mistral' && tePath && statSync(tePath).isFile() ? await embeddedTekkenTokenizerJson(tePath) : undefined;
  if (tekken) tokenizer = new MistralPromptTokenizer(tekken, {}, text!.config.maxLength, `${tePath}'s tekken_model`);
  if (tokPath) {
    const json = statSync(tokPath).isDirectory() ? join(tokPath, 'tokenizer.json') : tokPath;
    // The encoder's kind picks the chat template; without an encoder, the transformer's guidance embedding (dev) does.
    const mistral = text ? text.kind === 'mistral' : cfg.guidanceEmbed;
    tokenizer = mistral ? MistralPromptTokenizer.fromFile(json, text?.config.maxLength ?? 512) : Qwen3PromptTokenizer.fromFiles(json, undefined, text?.config.maxLength ?? 512);
    if (text && tokenizer.vocabSize > text.config.vocabSize) {
      throw new CheckpointError(json, `the tokenizer has ${tokenizer.vocabSize} tokens; the text encoder embeds ${text.config.vocabSize}`);
    }
  }

  return {
    transformerConfig: cfg, detection, transformer, text, vae, tokenizer, dtypes: [...dtypes], params,
    close() { for (const c of closers) c(); },
  };
}

export interface Flux1Files {
  /** A BFL/ComfyUI single file, a diffusers transformer, or a whole diffusers folder. */
  transformer: string;
  /** CLIP-L (transformers names `text_model.*`); defaults to the diffusers folder's text_encoder/. */
  clip?: string;
  /** T5-XXL encoder (`encoder.block.*`, `shared.weight`); defaults to text_encoder_2/. */
  t5?: string;
  /** The 16-channel VAE (ldm names as BFL's ae.safetensors, or diffusers'); defaults to vae/. */
  vae?: string;
}

export interface LoadedFlux1 {
  transformerConfig: FluxTransformerConfig;
  detection: FluxDetection;
  transformer: WeightSource;
  clip?: WeightSource;
  t5?: WeightSource;
  /** Sizes read from the text encoders' tensors (undefined when they cannot be told). */
  clipConfig?: ClipTextConfig;
  t5Config?: T5Config;
  /** T5 tokens per prompt when the file states it (`loragraph_text_max_length`; tiny models). */
  t5Length?: number;
  vae?: { config: VaeConfig; weights: WeightSource };
  dtypes: string[];
  /** Parameters per part id (transformer, text_encoder = CLIP-L, text_encoder_2 = T5, vae). */
  params: Record<string, number>;
  close(): void;
}

/** FLUX.1 dev/schnell: transformer, CLIP-L, T5-XXL and the 16-channel VAE, each from its own file or folder. */
export async function loadFlux1(files: Flux1Files): Promise<LoadedFlux1> {
  const root = files.transformer;
  const isDiffusersRoot = existsSync(root) && statSync(root).isDirectory() && existsSync(join(root, 'transformer'));
  const sub = (name: string) => (isDiffusersRoot && existsSync(join(root, name)) ? join(root, name) : undefined);
  const tPath = isDiffusersRoot ? join(root, 'transformer') : root;
  const opened = await openTransformer(tPath);
  if (opened.detection.config.generation !== 1) { opened.close(); throw new CheckpointError(tPath, `this is a FLUX.2 transformer (${opened.detection.config.name}), not FLUX.1`); }
  const closers = [() => opened.close()];
  const dtypes = new Set(opened.dtypes);
  const params: Record<string, number> = { transformer: opened.params };
  const part = async (path: string | undefined, required: string[], what: string, rename: (k: string) => string = (k) => k) => {
    if (!path) return undefined;
    const idx = await indexSafetensors(path);
    const named = new Map([...idx.tensors].map(([k, v]) => [rename(k), v]));
    const missing = required.find((k) => !named.has(k));
    if (missing) throw new CheckpointError(path, `not ${what}: no '${missing}'`);
    const w = new CheckpointWeights(named, path);
    closers.push(() => w.close());
    idx.dtypes.forEach((d) => dtypes.add(d));
    return { weights: w, index: idx, shapeOf: (k: string) => named.get(k)?.entry.shape, keys: [...named.keys()] };
  };
  const clip = await part(files.clip ?? sub('text_encoder'), ['text_model.embeddings.token_embedding.weight'], 'a CLIP text encoder');
  if (clip) params.text_encoder = clip.index.params;
  // ComfyUI's T5 files keep transformers' names; some drop `shared.` for `encoder.embed_tokens.`.
  const t5 = await part(files.t5 ?? sub('text_encoder_2'), ['shared.weight', 'encoder.block.0.layer.0.SelfAttention.q.weight'], 'a T5 encoder',
    (k) => (k === 'encoder.embed_tokens.weight' ? 'shared.weight' : k));
  if (t5) params.text_encoder_2 = t5.index.params;
  let vae: LoadedFlux1['vae'];
  const vPath = files.vae ?? sub('vae');
  if (vPath) {
    const v = await part(vPath, [], 'a VAE');
    params.vae = v!.index.params;
    const ldm = v!.index.tensors.has('encoder.down.0.block.0.conv1.weight');
    const moments = v!.index.tensors.get('encoder.conv_out.weight')?.entry.shape;
    if (!moments || moments[0] !== 32) throw new CheckpointError(vPath, `not the FLUX.1 VAE: encoder.conv_out gives ${moments ? moments[0] / 2 : 'no'} latent channels, FLUX.1 has 16`);
    const found = vaeSizesFromShapes(v!.shapeOf, v!.keys, v!.index.metadata, FLUX1_VAE);
    if (!found) throw new CheckpointError(vPath, 'not a VAE: no encoder convs');
    vae = { config: found.config, weights: ldm ? new LdmVaeWeights(v!.weights, found.config) : v!.weights };
  }
  const t5Length = t5?.index.metadata.loragraph_text_max_length;
  return {
    transformerConfig: opened.detection.config, detection: opened.detection, transformer: opened.weights,
    clip: clip?.weights, t5: t5?.weights, vae, dtypes: [...dtypes], params,
    clipConfig: clip && clipConfigFromShapes(clip.shapeOf, clip.keys, clip.index.metadata),
    t5Config: t5 && t5ConfigFromShapes(t5.shapeOf, t5.keys),
    ...(t5Length ? { t5Length: Number(t5Length) } : {}),
    close() { for (const c of closers) c(); },
  };
}

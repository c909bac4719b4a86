// Loads a Wan model from the layouts people have it in:
//   ComfyUI          models/diffusion_models/wan2.1_t2v_1.3B_fp16.safetensors (Wan names, maybe under
//                    model.diffusion_model.), models/text_encoders/umt5_xxl_fp16.safetensors (transformers
//                    names), models/vae/wan_2.1_vae.safetensors or wan2.2_vae.safetensors (Wan names);
//                    a 2.2 A14B model is two files, `…high_noise_14B…` and `…low_noise_14B…`
//   diffusers        transformer/ (and transformer_2/, the low-noise expert of 2.2 A14B), text_encoder/,
//                    tokenizer/tokenizer.json, vae/
//   Wan's own        one transformer file or folder (shards) in Wan names
// Wan 2.1 I2V and FLF2V also need their CLIP vision tower: ComfyUI's models/clip_vision/clip_vision_h.safetensors,
// diffusers' image_encoder/, or Wan's visual tower (kernels/vision/clip-vision-load.ts reads each layout).
// The text encoder and the VAE of a single transformer file are found by their tensors among the files
// beside it, in ComfyUI's sibling folders (../text_encoders, ../vae) and in the models folder. Sizes are
// read from tensors, so the tiny model loads through the same code. Weights stay lazy: read when a
// graph asks for them, so an expert whose graph is not built never has a byte in memory.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { Tensor } from '../tensor';
import type { WeightSource, WeightUse } from '../nn/weights';
import { CheckpointWeights, type CheckpointWeightsOptions, type TensorLocation } from '../sd/checkpoint-weights';
import { CheckpointError } from '../sd/load';
import { indexSafetensors } from '../flux/load';
import { t5SizesFromShapes, type T5Config } from '../text/t5';
import { T5PromptTokenizer } from '../text/t5-tokenizer';
import { detectWanTransformer, expertFromFileName, type WanDetection, type WanExpert } from './detect';
import { wanToDiffusers } from './keys';
import { diffusersVaeResnetsPerLevel, diffusersVaeToWan } from './vae-keys';
import { UMT5_XXL } from './umt5';
import { WAN21_VAE, WAN_TINY_VAE, type WanVaeConfig } from './vae';
import { WAN22_VAE } from './vae22';
import { openClipVision, type OpenedClipVision } from '../vision/clip-vision-load';
import { detectClipVisionNaming } from '../vision/clip-vision-keys';

/** Serves Wan names from a diffusers-layout transformer (a pure renaming, kernels/wan/keys.ts). */
class DiffusersWanWeights implements WeightSource {
  constructor(readonly inner: CheckpointWeights) {}
  get(path: string, shape: readonly number[], use?: WeightUse): Tensor {
    const inner: WeightSource = this.inner;
    return inner.get(wanToDiffusers(path), shape, use);
  }
}

const under = (tensors: Map<string, TensorLocation>, prefix: string) =>
  (prefix ? new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v])) : tensors);

export interface OpenedWanTransformer {
  detection: WanDetection;
  weights: WeightSource;
  params: number;
  dtypes: Set<string>;
  metadata: Record<string, string>;
  close(): void;
}

/** A Wan transformer file or folder (shards), detected and served under Wan names whatever its layout. */
export async function openWanTransformer(path: string, numHeads?: number, opts: CheckpointWeightsOptions = {}): Promise<OpenedWanTransformer> {
  const t = await indexSafetensors(path);
  const heads = numHeads ?? (t.metadata.loragraph_num_heads ? Number(t.metadata.loragraph_num_heads) : undefined);
  const detection = detectWanTransformer([...t.tensors.keys()], (k) => t.tensors.get(k)?.entry.shape, { fileName: basename(path), numHeads: heads });
  if (!detection) throw new CheckpointError(path, 'not a Wan transformer: no patch_embedding with head.modulation (Wan names) or condition_embedder.time_proj (diffusers names)');
  const own = new CheckpointWeights(under(t.tensors, detection.prefix), path, opts);
  let params = 0;
  for (const [k, v] of t.tensors) if (k.startsWith(detection.prefix)) params += v.entry.shape.reduce((a, b) => a * b, 1);
  return {
    detection, weights: detection.layout === 'wan' ? own : new DiffusersWanWeights(own), params, dtypes: t.dtypes, metadata: t.metadata,
    close: () => own.close(),
  };
}

// ---- the text encoder ---------------------------------------------------------------------------

/**
 * umT5 sizes from an encoder's tensors (transformers names): a relative-position table in every layer is
 * what makes it umT5 (T5 v1.1 has one, in layer 0). Undefined when the tensors are not a umT5 encoder.
 */
export function umt5ConfigFromShapes(shapeOf: (k: string) => readonly number[] | undefined, keys: readonly string[]): T5Config | undefined {
  // Some ComfyUI files omit `shared.weight` for `encoder.embed_tokens.weight`.
  const sizes = t5SizesFromShapes((k) => shapeOf(k) ?? (k === 'shared.weight' ? shapeOf('encoder.embed_tokens.weight') : undefined), keys);
  if (!sizes) return undefined;
  if (sizes.numLayers > 1 && !shapeOf('encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight')) return undefined; // T5, not umT5
  return { ...UMT5_XXL, name: sizes.dModel === UMT5_XXL.dModel && sizes.numLayers === UMT5_XXL.numLayers ? UMT5_XXL.name : `umt5-${sizes.dModel}`, ...sizes };
}

/** ComfyUI's umT5 files and transformers' both use these names; some ComfyUI files omit `shared.weight` for `encoder.embed_tokens.weight`. */
class Umt5Weights implements WeightSource {
  constructor(readonly inner: CheckpointWeights) {}
  get(path: string, shape: readonly number[], use?: WeightUse): Tensor {
    const inner: WeightSource = this.inner;
    return inner.get(path === 'shared.weight' && !this.inner.has(path) ? 'encoder.embed_tokens.weight' : path, shape, use);
  }
}

/** The tokenizer.json of a umT5: given, the diffusers folder's tokenizer/, beside the text encoder file, or the models folder's tokenizers/umt5/. */
export function findUmt5Tokenizer(candidates: readonly (string | undefined)[]): string | undefined {
  return candidates.filter((c): c is string => !!c).find((c) => existsSync(c) && statSync(c).isFile());
}

// ---- the VAE --------------------------------------------------------------------------------------

/**
 * A Wan VAE's sizes from its tensors (Wan names, `wan_2.1_vae` / `wan2.2_vae` as ComfyUI ships them).
 * Releases are recognised by their latent channels and base width; other sizes (the tiny VAE) read
 * levels, resnets and temporal downsampling from the encoder's tensors and their statistics from the
 * file's metadata (`loragraph_latent_mean` / `loragraph_latent_std`, JSON arrays).
 */
export function wanVaeConfigFromShapes(shapeOf: (k: string) => readonly number[] | undefined, keys: readonly string[], metadata: Record<string, string> = {}): WanVaeConfig | undefined {
  const conv1 = shapeOf('encoder.conv1.weight');
  const moments = shapeOf('conv1.weight');
  if (!conv1 || conv1.length !== 5 || !moments) return undefined;
  const base = conv1[0];
  const zDim = moments[0] / 2;
  const v22 = keys.some((k) => k.startsWith('encoder.downsamples.0.downsamples.'));
  for (const known of [WAN21_VAE, WAN22_VAE]) {
    if (known.base === base && known.zDim === zDim && (known.version === '2.2') === v22) return known;
  }
  if (v22) return undefined; // a custom-size 2.2 VAE: not needed yet
  // Custom 2.1-architecture sizes: walk encoder.downsamples.N (resnets, then a resample per level but the last).
  const dimMult: number[] = [];
  const temporalDownsample: boolean[] = [];
  let numResBlocks = 0, inLevel = 0;
  for (let i = 0; ; i++) {
    const res = shapeOf(`encoder.downsamples.${i}.residual.2.weight`);
    const resample = shapeOf(`encoder.downsamples.${i}.resample.1.weight`);
    if (res) { inLevel++; if (inLevel === 1) dimMult.push(res[0] / base); continue; }
    if (resample) { numResBlocks = inLevel; inLevel = 0; temporalDownsample.push(keys.includes(`encoder.downsamples.${i}.time_conv.weight`)); continue; }
    break;
  }
  if (!dimMult.length) return undefined;
  const stats = (k: string, fill: number) => { try { const v = JSON.parse(metadata[k] ?? 'null'); return Array.isArray(v) && v.length === zDim ? v.map(Number) : Array(zDim).fill(fill); } catch { return Array(zDim).fill(fill); } };
  return { ...WAN_TINY_VAE, name: `wan-vae-${base}-${zDim}`, base, dimMult, numResBlocks: numResBlocks || 1, temporalDownsample, zDim, latentMean: stats('loragraph_latent_mean', 0), latentStd: stats('loragraph_latent_std', 1) };
}

/**
 * A VAE file's tensors under Wan names: a diffusers AutoencoderKLWan (2.1) is renamed (kernels/wan/vae-keys.ts),
 * Wan's own names pass. Each tensor keeps its file key for messages.
 */
export function wanNamedVae(tensors: Map<string, TensorLocation>, file: string): Map<string, TensorLocation> {
  if (!tensors.has('encoder.conv_in.weight') || !tensors.has('quant_conv.weight')) return tensors;
  if ([...tensors.keys()].some((k) => /^encoder\.down_blocks\.\d+\.resnets\./.test(k))) {
    throw new CheckpointError(file, 'a diffusers-layout Wan 2.2 VAE is not read yet: use ComfyUI\'s wan2.2_vae.safetensors');
  }
  const perLevel = diffusersVaeResnetsPerLevel(tensors.keys());
  const out = new Map<string, TensorLocation>();
  for (const [k, loc] of tensors) {
    const wan = diffusersVaeToWan(k, perLevel);
    if (wan === undefined) throw new CheckpointError(file, `tensor '${k}' is not a Wan VAE tensor in diffusers names`);
    out.set(wan, loc);
  }
  return out;
}

// ---- finding parts -------------------------------------------------------------------------------

const safetensorsIn = (dir: string) => (existsSync(dir) && statSync(dir).isDirectory() ? readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort().map((f) => join(dir, f)) : []);

/** Where ComfyUI users keep the other parts of a diffusion-model file: beside it, its sibling folders, the models folder. */
export function neighbourFiles(transformerFile: string, folder: 'text_encoders' | 'vae' | 'clip_vision', modelsDir?: string): string[] {
  const dir = dirname(transformerFile);
  const out = [...safetensorsIn(dir), ...safetensorsIn(join(dirname(dir), folder))];
  if (folder === 'text_encoders') out.push(...safetensorsIn(join(dirname(dir), 'clip')));
  if (modelsDir) out.push(...safetensorsIn(join(modelsDir, folder)));
  return [...new Set(out)].filter((f) => f !== transformerFile);
}

/** The first file whose header `fits` (only headers are read). */
async function firstFitting<T>(files: readonly string[], fits: (keys: string[], shapeOf: (k: string) => readonly number[] | undefined, metadata: Record<string, string>) => T | undefined): Promise<{ file: string; found: T } | undefined> {
  for (const file of files) {
    const idx = await indexSafetensors(file).catch(() => undefined);
    if (!idx) continue;
    const found = fits([...idx.tensors.keys()], (k) => idx.tensors.get(k)?.entry.shape, idx.metadata);
    if (found !== undefined) return { file, found };
  }
  return undefined;
}

/** The other 2.2 A14B expert's file: the same name with high_noise ↔ low_noise. */
export function otherExpertFile(file: string, expert: WanExpert): string | undefined {
  const other = basename(file).replace(expert === 'high_noise' ? /high([_-]?)noise/i : /low([_-]?)noise/i, (_m, sep: string) => `${expert === 'high_noise' ? 'low' : 'high'}${sep}noise`);
  const path = join(dirname(file), other);
  return other !== basename(file) && existsSync(path) ? path : undefined;
}

export interface WanFiles {
  transformer: string;
  /** 2.2 A14B: each expert's transformer file or folder (the loaded one is `transformer`). */
  experts?: Partial<Record<WanExpert, string>>;
  textEncoder: string;
  vae: string;
  tokenizer?: string;
  /** 2.1 I2V: the CLIP vision tower's file or folder (absent when none was found: the image features are refused when a graph needs them). */
  clipVision?: string;
  /** The expert boundary a diffusers folder's model_index.json states (`boundary_ratio`). */
  boundary?: number;
}

/** Finds every part of a Wan model from a diffusers folder or a diffusion-model file. */
export async function findWanFiles(path: string, opts: { modelsDir?: string; textEncoder?: string; vae?: string; clipVision?: string } = {}): Promise<WanFiles> {
  const found = await findWanFilesAround(path, opts);
  if (opts.clipVision) found.clipVision = opts.clipVision;
  if (!opts.textEncoder && !opts.vae) return found;
  // Files chosen on Load Model replace what was found; the tokenizer is looked for beside a chosen text encoder first.
  const te = opts.textEncoder;
  const stem = te && basename(te, extname(te));
  return {
    ...found, textEncoder: te ?? found.textEncoder, vae: opts.vae ?? found.vae,
    tokenizer: (te && findUmt5Tokenizer([join(dirname(te), `${stem}.tokenizer.json`), join(dirname(te), 'tokenizer.json'), join(dirname(te), 'tokenizer', 'tokenizer.json')])) ?? found.tokenizer,
  };
}

async function findWanFilesAround(path: string, opts: { modelsDir?: string; textEncoder?: string; vae?: string; clipVision?: string }): Promise<WanFiles> {
  if (!existsSync(path)) throw new CheckpointError(path, 'no such file or folder');
  const isFolder = statSync(path).isDirectory();
  if (isFolder && existsSync(join(path, 'transformer'))) {
    const need = (name: string) => { const p = join(path, name); if (!existsSync(p)) throw new CheckpointError(path, `a diffusers Wan folder needs ${name}/`); return p; };
    const high = join(path, 'transformer');
    const low = existsSync(join(path, 'transformer_2')) ? join(path, 'transformer_2') : undefined;
    const tok = join(path, 'tokenizer', 'tokenizer.json');
    let boundary: number | undefined;
    try { boundary = Number(JSON.parse(readFileSync(join(path, 'model_index.json'), 'utf8')).boundary_ratio) || undefined; } catch { boundary = undefined; }
    return {
      transformer: high,
      // diffusers' Wan 2.2 A14B pipelines run `transformer` above the boundary and `transformer_2` below it.
      experts: low ? { high_noise: high, low_noise: low } : undefined,
      boundary,
      textEncoder: need('text_encoder'), vae: need('vae'), tokenizer: existsSync(tok) ? tok : undefined,
      // diffusers' WanImageToVideoPipeline keeps 2.1's CLIP vision tower (transformers names) in image_encoder/.
      clipVision: existsSync(join(path, 'image_encoder')) ? join(path, 'image_encoder') : undefined,
    };
  }
  const t = await openWanTransformer(path);
  const textDim = t.detection.config.textDim;
  const zDim = t.detection.config.outChannels;
  const clipImageDim = t.detection.config.clipImageDim;
  t.close();
  const te = opts.textEncoder ? { file: opts.textEncoder } : await firstFitting(neighbourFiles(path, 'text_encoders', opts.modelsDir), (keys, shapeOf) => {
    const c = umt5ConfigFromShapes(shapeOf, keys);
    return c && c.dModel === textDim ? c : undefined;
  });
  if (!te) throw new CheckpointError(path, `no umT5 text encoder of width ${textDim} found beside it, in ../text_encoders${opts.modelsDir ? ` or ${join(opts.modelsDir, 'text_encoders')}` : ''} (ComfyUI's umt5_xxl_fp16.safetensors)`);
  const vae = opts.vae ? { file: opts.vae } : await firstFitting(neighbourFiles(path, 'vae', opts.modelsDir), (keys, shapeOf, md) => {
    const c = wanVaeConfigFromShapes(shapeOf, keys, md);
    return c && c.zDim === zDim ? c : undefined;
  });
  if (!vae) throw new CheckpointError(path, `no Wan VAE with ${zDim} latent channels found beside it, in ../vae${opts.modelsDir ? ` or ${join(opts.modelsDir, 'vae')}` : ''} (${zDim === 48 ? 'wan2.2_vae' : 'wan_2.1_vae'}.safetensors)`);
  // ComfyUI's "Load CLIP Vision" folder: a tower as wide as the image branch takes.
  const clipVision = !clipImageDim || opts.clipVision ? undefined : await firstFitting(neighbourFiles(path, 'clip_vision', opts.modelsDir), (keys, shapeOf) => {
    const found = detectClipVisionNaming(keys);
    const patch = found && (shapeOf(`${found.prefix}vision_model.embeddings.patch_embedding.weight`) ?? shapeOf(`${found.prefix}patch_embedding.weight`) ?? shapeOf(`${found.prefix}conv1.weight`));
    return patch?.[0] === clipImageDim ? found : undefined;
  });
  const expert = t.detection.expert;
  const other = expert ? otherExpertFile(path, expert) : undefined;
  const stem = basename(te.file, extname(te.file));
  const tokenizer = findUmt5Tokenizer([
    join(dirname(te.file), `${stem}.tokenizer.json`), join(dirname(te.file), 'tokenizer.json'), join(dirname(path), 'tokenizer.json'),
    opts.modelsDir && join(opts.modelsDir, 'tokenizers', 'umt5', 'tokenizer.json'),
  ]);
  return {
    transformer: path,
    experts: expert ? { [expert]: path, ...(other ? { [expert === 'high_noise' ? 'low_noise' : 'high_noise']: other } : {}) } : undefined,
    textEncoder: te.file, vae: vae.file, tokenizer, clipVision: clipVision?.file,
  };
}

export interface LoadedWanParts {
  transformer: OpenedWanTransformer;
  text: { config: T5Config; weights: WeightSource; params: number };
  vae: { config: WanVaeConfig; weights: WeightSource; params: number };
  tokenizer?: T5PromptTokenizer;
  /** 2.1 I2V's CLIP vision tower, when its file was found. */
  clipVision?: OpenedClipVision;
  dtypes: string[];
  close(): void;
}

/** Refuses fp8 files up front (ComfyUI's `*_fp8_e4m3fn_scaled`): their weights are fp8 × a per-tensor scale, which the loaders do not read yet. */
function refuseFp8(file: string, dtypes: Set<string>, what: string): void {
  const fp8 = [...dtypes].find((d) => d.startsWith('F8'));
  if (fp8) throw new CheckpointError(file, `this ${what} holds ${fp8} (fp8) weights, which loragraph does not read yet: use the fp16 or bf16 file (e.g. umt5_xxl_fp16.safetensors, wan2.1_t2v_14B_fp16.safetensors)`);
}

/**
 * Opens the parts `findWanFiles` found (headers only; tensors are read when a graph asks). `external`:
 * fp32/fp16 tensors stay in their files as ONNX external data (user checkpoints).
 */
export async function openWanParts(files: WanFiles, numHeads?: number, opts: CheckpointWeightsOptions = {}): Promise<LoadedWanParts> {
  const closers: (() => void)[] = [];
  try {
    const transformer = await openWanTransformer(files.transformer, numHeads, opts);
    closers.push(() => transformer.close());
    refuseFp8(files.transformer, transformer.dtypes, 'Wan transformer');
    const te = await indexSafetensors(files.textEncoder);
    refuseFp8(files.textEncoder, te.dtypes, 'umT5 text encoder');
    const teConfig = umt5ConfigFromShapes((k) => te.tensors.get(k)?.entry.shape, [...te.tensors.keys()]);
    if (!teConfig) throw new CheckpointError(files.textEncoder, 'not a umT5 encoder: needs shared.weight and encoder.block.N.layer.0.SelfAttention.relative_attention_bias in every layer');
    if (teConfig.dModel !== transformer.detection.config.textDim) throw new CheckpointError(files.textEncoder, `this umT5 is ${teConfig.dModel} wide; the transformer takes ${transformer.detection.config.textDim}-wide text features`);
    const teWeights = new CheckpointWeights(te.tensors, files.textEncoder, opts);
    closers.push(() => teWeights.close());
    const v = await indexSafetensors(files.vae);
    refuseFp8(files.vae, v.dtypes, 'VAE');
    const vaeTensors = wanNamedVae(v.tensors, files.vae);
    const vaeConfig = wanVaeConfigFromShapes((k) => vaeTensors.get(k)?.entry.shape, [...vaeTensors.keys()], v.metadata);
    if (!vaeConfig) throw new CheckpointError(files.vae, 'not a Wan VAE: no encoder.conv1 (causal 3D conv) and conv1 tensors (or diffusers\' encoder.conv_in and quant_conv)');
    if (vaeConfig.zDim !== transformer.detection.config.outChannels) throw new CheckpointError(files.vae, `this VAE has ${vaeConfig.zDim} latent channels; the transformer denoises ${transformer.detection.config.outChannels}`);
    const vaeWeights = new CheckpointWeights(vaeTensors, files.vae, opts);
    closers.push(() => vaeWeights.close());
    let clipVision: OpenedClipVision | undefined;
    const clipImageDim = transformer.detection.config.clipImageDim;
    if (files.clipVision && clipImageDim) {
      // Its errors name Load Model's clipVision widget, where the file is chosen.
      clipVision = await openClipVision(files.clipVision, opts).catch((e: Error) => { throw new Error(`clipVision: ${e.message}`); });
      closers.push(() => clipVision!.close());
      if (clipVision.config.hiddenSize !== clipImageDim) throw new Error(`clipVision: ${files.clipVision}: this CLIP vision tower is ${clipVision.config.hiddenSize} wide; the transformer's image branch takes ${clipImageDim}-wide features (ViT-H/14: clip_vision_h.safetensors)`);
    }
    let tokenizer: T5PromptTokenizer | undefined;
    if (files.tokenizer) {
      tokenizer = T5PromptTokenizer.fromFile(files.tokenizer);
      if (tokenizer.vocabSize > teConfig.vocabSize) throw new CheckpointError(files.tokenizer, `the tokenizer has ${tokenizer.vocabSize} tokens; the text encoder embeds ${teConfig.vocabSize}`);
    }
    return {
      transformer, text: { config: teConfig, weights: new Umt5Weights(teWeights), params: te.params }, vae: { config: vaeConfig, weights: vaeWeights, params: v.params }, tokenizer, clipVision,
      dtypes: [...new Set([...transformer.dtypes, ...te.dtypes, ...v.dtypes, ...(clipVision?.dtypes ?? [])])],
      close() { for (const c of closers) c(); },
    };
  } catch (e) {
    for (const c of closers) c();
    throw e;
  }
}

/**
 * The VAE value's weights with the CLIP vision tower's under `scope.` (Wan 2.1 I2V: both turn the clip's
 * pixels into conditioning, in one graph). Without a tower, asking for its tensors fails with `missing`.
 */
export class VaeWithClipVision implements WeightSource {
  constructor(readonly vae: WeightSource, readonly clipVision: WeightSource | undefined, readonly scope: string, readonly missing: string) {}
  get(path: string, shape: readonly number[], use?: WeightUse): Tensor {
    if (!path.startsWith(`${this.scope}.`)) return this.vae.get(path, shape, use);
    if (!this.clipVision) throw new Error(this.missing);
    return this.clipVision.get(path.slice(this.scope.length + 1), shape, use);
  }
}

export { expertFromFileName };

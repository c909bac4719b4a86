// Which Wan transformer a file holds, read from tensor names and a few shapes as ComfyUI's detection
// does: the width is `patch_embedding.weight`'s first dimension and the input channels its second,
// blocks are counted, `img_emb` marks 2.1 I2V's CLIP branch and `img_emb.emb_pos` FLF2V's (ComfyUI reads
// its token count from that tensor; Wan's own config calls the model 'flf2v'). Works on Wan-format files (bare, or under
// `model.diffusion_model.` / `diffusion_model.`) and diffusers ones (bare or under `transformer.`).
//
// Keys cannot tell everything apart: Wan 2.1 T2V 14B and each Wan 2.2 T2V A14B expert are the same
// network, and a 2.2 expert's file does not say whether it is the high- or low-noise one. Those come
// from the file name (`…high_noise…`, `…low_noise…`, `wan2.2`/`a14b`), and the detection says when it
// had to guess.
import {
  clipImageTokens, WAN21_FLF2V_14B, WAN21_I2V_14B, WAN21_T2V_14B, WAN21_T2V_1_3B, WAN22_I2V_A14B, WAN22_T2V_A14B, WAN22_TI2V_5B, WAN_HEAD_DIM, type WanTransformerConfig,
} from './config';
import { diffusersToWan } from './keys';

export type WanLayout = 'wan' | 'diffusers';
export type WanExpert = 'high_noise' | 'low_noise';

export interface WanDetection {
  config: WanTransformerConfig;
  layout: WanLayout;
  /** Prefix in front of the transformer's names in this file ('' when bare). */
  prefix: string;
  /** The release whose sizes match (undefined for custom sizes such as the tiny model). */
  variant?: string;
  /** Other releases with exactly these tensors (2.1 T2V 14B ↔ 2.2 T2V A14B expert). */
  sameKeysAs: string[];
  /** The 2.2 A14B expert, when the file name says which. */
  expert?: WanExpert;
}

const PREFIXES = ['model.diffusion_model.', 'diffusion_model.', 'transformer.', ''];
const RELEASES = [WAN21_T2V_1_3B, WAN21_T2V_14B, WAN21_I2V_14B, WAN21_FLF2V_14B, WAN22_T2V_A14B, WAN22_I2V_A14B, WAN22_TI2V_5B];

/** The 2.2 expert a file name names (ai-toolkit's `_high_noise` / `_low_noise`, ComfyUI's `high_noise_14B`). */
export function expertFromFileName(fileName: string): WanExpert | undefined {
  const n = fileName.toLowerCase();
  if (/high[_-]?noise/.test(n)) return 'high_noise';
  if (/low[_-]?noise/.test(n)) return 'low_noise';
  return undefined;
}

export interface WanDetectOptions {
  /** The file's name (picks 2.1 vs 2.2 and the expert where the keys cannot). */
  fileName?: string;
  /** Heads of a custom-size model (its metadata's; Wan's full-width q/k norms do not show the head count). */
  numHeads?: number;
}

/** Returns undefined when the names are not a Wan transformer's. */
export function detectWanTransformer(keys: readonly string[], shapeOf: (key: string) => readonly number[] | undefined, opts: WanDetectOptions = {}): WanDetection | undefined {
  const fileName = opts.fileName ?? '';
  for (const prefix of PREFIXES) {
    const rest = keys.filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
    const layout: WanLayout | undefined = rest.includes('head.modulation') ? 'wan' : rest.includes('condition_embedder.time_proj.weight') ? 'diffusers' : undefined;
    if (!layout || !rest.includes('patch_embedding.weight')) continue;
    // Read everything in Wan's names.
    const wanNames = new Map(rest.map((k) => [layout === 'wan' ? k : safeToWan(k), prefix + k] as const).filter(([w]) => w !== undefined) as [string, string][]);
    const shape = (k: string) => { const real = wanNames.get(k); return real ? shapeOf(real) : undefined; };
    const patch = shape('patch_embedding.weight');
    const ffn = shape('blocks.0.ffn.0.weight');
    const text = shape('text_embedding.0.weight');
    const headOut = shape('head.head.weight');
    const freq = shape('time_embedding.0.weight');
    if (!patch || patch.length !== 5 || !ffn || !text || !headOut || !freq) return undefined;
    let numLayers = 0;
    for (const k of wanNames.keys()) { const m = k.match(/^blocks\.(\d+)\./); if (m) numLayers = Math.max(numLayers, Number(m[1]) + 1); }
    const [dim, inChannels, pt, ph, pw] = patch;
    const clip = shape('img_emb.proj.1.weight');
    const embPos = shape('img_emb.emb_pos');
    const firstLastFrame = !!embPos;
    if (embPos && (embPos.length !== 3 || embPos[1] !== clipImageTokens({ firstLastFrame }) || embPos[2] !== clip?.[1])) {
      throw new Error(`img_emb.emb_pos is [${embPos}]; Wan 2.1 FLF2V's holds [1, ${clipImageTokens({ firstLastFrame })}, ${clip?.[1] ?? 'the CLIP width'}] (positions of the first and the last frame's CLIP tokens)`);
    }
    const sizes = {
      dim, inChannels, numLayers, ffnDim: ffn[0], textDim: text[1], freqDim: freq[1], clipImageDim: clip ? clip[1] : 0, firstLastFrame,
      outChannels: headOut[0] / (pt * ph * pw), patch: [pt, ph, pw] as [number, number, number],
    };
    const matches = RELEASES.filter((c) => (Object.keys(sizes) as (keyof typeof sizes)[]).every((k) => String(c[k]) === String(sizes[k])));
    const expert = expertFromFileName(fileName);
    // 2.1 T2V 14B and the 2.2 T2V expert share every tensor: a 2.2-looking name or an expert picks 2.2.
    const says22 = expert !== undefined || /wan2[._]?2|a14b/i.test(fileName);
    const chosen = matches.length > 1 ? (matches.find((c) => c.name.startsWith(says22 ? 'wan2.2' : 'wan2.1')) ?? matches[0]) : matches[0];
    // Sizes no release has (the tiny model): heads of 128 as every release has, unless the metadata says.
    const numHeads = opts.numHeads ?? dim / WAN_HEAD_DIM;
    if (!chosen && !Number.isInteger(numHeads)) throw new Error(`Wan transformer of width ${dim} is no release; its head count is not in the tensors (give it from the file's metadata)`);
    const config: WanTransformerConfig = chosen ?? {
      ...WAN21_T2V_1_3B, name: 'wan-custom', ...sizes, numHeads, perTokenTimesteps: inChannels === 48,
    };
    return { config, layout, prefix, variant: chosen?.name, sameKeysAs: matches.filter((c) => c !== chosen).map((c) => c.name), expert };
  }
  return undefined;
}

function safeToWan(k: string): string | undefined {
  try { return diffusersToWan(k); } catch { return undefined; }
}

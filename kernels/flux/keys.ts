// BFL ↔ diffusers tensor names of the FLUX transformers, both ways. BFL's single files (and ComfyUI's)
// fuse what diffusers keeps apart: a double block's `img_attn.qkv` is diffusers' `attn.to_q`, `to_k`,
// `to_v` stacked by rows; FLUX.1's `single_blocks.N.linear1` is `attn.to_q/to_k/to_v` + `proj_mlp`.
// The final layer's modulation is (shift, scale) in BFL and (scale, shift) in diffusers' `norm_out`.
// Every BFL tensor maps to row ranges of one or more diffusers tensors; together they tile it.
import type { HostTensor } from '../tensor';
import type { FluxTransformerConfig } from './config';
import { mlpHidden } from './config';
import { fluxTransformerShapes } from './shapes';

/** A diffusers tensor holding rows [start, end) of a BFL tensor. */
export interface KeyPart { key: string; rows: [number, number] }
export interface KeyMapping {
  bfl: string;
  diffusers: KeyPart[];
  /** The two row halves change places (final layer modulation). */
  swapHalves?: boolean;
}

type Rule = { parts: (rows: number) => { name: string; rows: [number, number] }[]; swap?: boolean };
const same = (name: string): Rule => ({ parts: (n) => [{ name, rows: [0, n] }] });
const thirds = (a: string, b: string, c: string): Rule => ({ parts: (n) => [a, b, c].map((name, i) => ({ name, rows: [(i * n) / 3, ((i + 1) * n) / 3] as [number, number] })) });

/** Module-level rules (BFL module path → diffusers modules), per generation. */
function moduleRules(cfg: FluxTransformerConfig): [RegExp, (m: RegExpMatchArray) => Rule][] {
  const h = cfg.hiddenSize;
  const two = cfg.generation === 2;
  const top: Record<string, Rule> = two ? {
    img_in: same('x_embedder'),
    txt_in: same('context_embedder'),
    'time_in.in_layer': same('time_guidance_embed.timestep_embedder.linear_1'),
    'time_in.out_layer': same('time_guidance_embed.timestep_embedder.linear_2'),
    'guidance_in.in_layer': same('time_guidance_embed.guidance_embedder.linear_1'),
    'guidance_in.out_layer': same('time_guidance_embed.guidance_embedder.linear_2'),
    'double_stream_modulation_img.lin': same('double_stream_modulation_img.linear'),
    'double_stream_modulation_txt.lin': same('double_stream_modulation_txt.linear'),
    'single_stream_modulation.lin': same('single_stream_modulation.linear'),
    'final_layer.linear': same('proj_out'),
    'final_layer.adaLN_modulation.1': { ...same('norm_out.linear'), swap: true },
  } : {
    img_in: same('x_embedder'),
    txt_in: same('context_embedder'),
    'time_in.in_layer': same('time_text_embed.timestep_embedder.linear_1'),
    'time_in.out_layer': same('time_text_embed.timestep_embedder.linear_2'),
    'guidance_in.in_layer': same('time_text_embed.guidance_embedder.linear_1'),
    'guidance_in.out_layer': same('time_text_embed.guidance_embedder.linear_2'),
    'vector_in.in_layer': same('time_text_embed.text_embedder.linear_1'),
    'vector_in.out_layer': same('time_text_embed.text_embedder.linear_2'),
    'final_layer.linear': same('proj_out'),
    'final_layer.adaLN_modulation.1': { ...same('norm_out.linear'), swap: true },
  };
  const ff = two ? ['linear_in', 'linear_out'] : ['net.0.proj', 'net.2'];
  const double: Record<string, Rule> = {
    'img_attn.qkv': thirds('attn.to_q', 'attn.to_k', 'attn.to_v'),
    'txt_attn.qkv': thirds('attn.add_q_proj', 'attn.add_k_proj', 'attn.add_v_proj'),
    'img_attn.proj': same('attn.to_out.0'),
    'txt_attn.proj': same('attn.to_add_out'),
    'img_attn.norm.query_norm': same('attn.norm_q'),
    'img_attn.norm.key_norm': same('attn.norm_k'),
    'txt_attn.norm.query_norm': same('attn.norm_added_q'),
    'txt_attn.norm.key_norm': same('attn.norm_added_k'),
    'img_mlp.0': same(`ff.${ff[0]}`),
    'img_mlp.2': same(`ff.${ff[1]}`),
    'txt_mlp.0': same(`ff_context.${ff[0]}`),
    'txt_mlp.2': same(`ff_context.${ff[1]}`),
    'img_mod.lin': same('norm1.linear'),
    'txt_mod.lin': same('norm1_context.linear'),
  };
  const single: Record<string, Rule> = two ? {
    linear1: same('attn.to_qkv_mlp_proj'),
    linear2: same('attn.to_out'),
    'norm.query_norm': same('attn.norm_q'),
    'norm.key_norm': same('attn.norm_k'),
  } : {
    linear1: { parts: () => ['attn.to_q', 'attn.to_k', 'attn.to_v', 'proj_mlp'].map((name, i) => ({ name, rows: (i < 3 ? [i * h, (i + 1) * h] : [3 * h, 3 * h + mlpHidden(cfg)]) as [number, number] })) },
    linear2: same('proj_out'),
    'norm.query_norm': same('attn.norm_q'),
    'norm.key_norm': same('attn.norm_k'),
    'modulation.lin': same('norm.linear'),
  };
  const scoped = (prefix: string, rules: Record<string, Rule>) => (m: RegExpMatchArray) => {
    const r = rules[m[2]];
    if (!r) throw new Error(`no diffusers name for '${m[0]}'`);
    return { parts: (n: number) => r.parts(n).map((p) => ({ ...p, name: `${prefix}.${m[1]}.${p.name}` })), swap: r.swap };
  };
  return [
    [/^double_blocks\.(\d+)\.(.+)$/, scoped('transformer_blocks', double)],
    [/^single_blocks\.(\d+)\.(.+)$/, scoped('single_transformer_blocks', single)],
    [/^(.+)$/, (m) => { const r = top[m[1]]; if (!r) throw new Error(`no diffusers name for '${m[1]}'`); return r; }],
  ];
}

/** BFL norm scales are `.scale`; diffusers' RMSNorm weights are `.weight`. */
const bflParamToDiffusers = (param: string) => (param === 'scale' ? 'weight' : param);

const mappingCache = new WeakMap<FluxTransformerConfig, KeyMapping[]>();

/** The mapping of every transformer tensor of a config, BFL → diffusers (from its full name list). */
export function fluxKeyMapping(cfg: FluxTransformerConfig): KeyMapping[] {
  // Tracing a 9B-sized model symbolically takes a fraction of a second; callers ask per LoRA module.
  let cached = mappingCache.get(cfg);
  if (!cached) { cached = buildKeyMapping(cfg); mappingCache.set(cfg, cached); }
  return cached;
}

function buildKeyMapping(cfg: FluxTransformerConfig): KeyMapping[] {
  const rules = moduleRules(cfg);
  const out: KeyMapping[] = [];
  for (const [key, shape] of fluxTransformerShapes(cfg).tensors) {
    const at = key.lastIndexOf('.');
    const module = key.slice(0, at);
    const param = key.slice(at + 1);
    const [re, make] = rules.find(([r]) => r.test(module))!;
    const rule = make(module.match(re)!);
    out.push({
      bfl: key,
      diffusers: rule.parts(shape[0]).map((p) => ({ key: `${p.name}.${bflParamToDiffusers(param)}`, rows: p.rows })),
      swapHalves: rule.swap || undefined,
    });
  }
  return out;
}

/** Module-level mapping for LoRA names: a BFL linear → its diffusers modules and their row ranges. */
export function fluxModuleMapping(cfg: FluxTransformerConfig): Map<string, { module: string; rows: [number, number] }[]> {
  const out = new Map<string, { module: string; rows: [number, number] }[]>();
  for (const m of fluxKeyMapping(cfg)) {
    if (!m.bfl.endsWith('.weight')) continue;
    out.set(m.bfl.slice(0, -'.weight'.length), m.diffusers.map((p) => ({ module: p.key.slice(0, -'.weight'.length), rows: p.rows })));
  }
  return out;
}

const rowSize = (t: HostTensor) => t.shape.slice(1).reduce((a, b) => a * b, 1);

function sliceRows(t: HostTensor, [start, end]: [number, number]): HostTensor {
  const r = rowSize(t);
  return { dtype: t.dtype, shape: [end - start, ...t.shape.slice(1)], data: t.data.slice(start * r, end * r) as HostTensor['data'] };
}

function swapHalves(t: HostTensor): HostTensor {
  const half = t.shape[0] / 2;
  const a = sliceRows(t, [0, half]);
  const b = sliceRows(t, [half, t.shape[0]]);
  return stackRows([b, a]);
}

function stackRows(parts: HostTensor[]): HostTensor {
  const n = parts.reduce((a, p) => a + p.data.length, 0);
  const data = new (parts[0].data.constructor as new (n: number) => HostTensor['data'])(n);
  let at = 0;
  for (const p of parts) { (data as Float32Array).set(p.data as Float32Array, at); at += p.data.length; }
  return { dtype: parts[0].dtype, shape: [parts.reduce((a, p) => a + p.shape[0], 0), ...parts[0].shape.slice(1)], data };
}

/** BFL-named tensors → diffusers-named tensors (fused projections split, final modulation swapped). */
export function fluxBflToDiffusers(cfg: FluxTransformerConfig, tensors: ReadonlyMap<string, HostTensor>): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const m of fluxKeyMapping(cfg)) {
    const t = tensors.get(m.bfl);
    if (!t) throw new Error(`FLUX checkpoint lacks '${m.bfl}'`);
    const src = m.swapHalves ? swapHalves(t) : t;
    for (const p of m.diffusers) out.set(p.key, m.diffusers.length === 1 ? src : sliceRows(src, p.rows));
  }
  return out;
}

/** diffusers-named tensors → BFL-named tensors (split projections stacked back). */
export function fluxDiffusersToBfl(cfg: FluxTransformerConfig, tensors: ReadonlyMap<string, HostTensor>): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const m of fluxKeyMapping(cfg)) {
    const parts = m.diffusers.map((p) => {
      const t = tensors.get(p.key);
      if (!t) throw new Error(`diffusers FLUX transformer lacks '${p.key}'`);
      return t;
    });
    const fused = parts.length === 1 ? parts[0] : stackRows(parts);
    out.set(m.bfl, m.swapHalves ? swapHalves(fused) : fused);
  }
  return out;
}

// Which modules get an adapter: a preset in the words trainers use (attention only, attention +
// feed-forward, all linear, all linear + convs) narrowed by include patterns and cut by exclude
// patterns over module paths (diffusers naming, e.g. `down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q`).
import type { ModuleInfo } from '../nn/builder';

export type TargetPreset = 'attention' | 'attention_ff' | 'all_linear' | 'all_linear_conv';
export const TARGET_PRESETS: readonly TargetPreset[] = ['attention', 'attention_ff', 'all_linear', 'all_linear_conv'];

export interface TargetSpec {
  /** Default `attention_ff`. */
  preset?: TargetPreset;
  /**
   * Keep only modules matching at least one of these (ai-toolkit's only_if_contains). A pattern in
   * slashes is a regular expression (`/attn[12]\.to_q$/`); otherwise a glob over the whole path where
   * `*` matches any run of characters and `?` one character (`*attn2*`, `mid_block.*`).
   */
  include?: string[];
  /** Drop modules matching any of these (same syntax). */
  exclude?: string[];
}

// Attention projections: diffusers (`attn1.to_q`, `to_out.0`) and CLIP/T5-style (`self_attn.q_proj`).
const ATTENTION = /(^|\.)(attn\d*|attention|self_attn|cross_attn)\.(to_q|to_k|to_v|to_out\.0|q_proj|k_proj|v_proj|out_proj|q|k|v|o)$/;
// Feed-forward: diffusers GEGLU (`ff.net.0.proj`, `ff.net.2`), CLIP MLP (`mlp.fc1`, `mlp.fc2`).
const FEED_FORWARD = /(^|\.)(ff\.net\.0\.proj|ff\.net\.2|ff_context\.net\.0\.proj|ff_context\.net\.2|mlp\.fc1|mlp\.fc2)$/;

const isPointwise = (m: ModuleInfo) => m.kind === 'linear' || (m.kernel[0] === 1 && m.kernel[1] === 1);

function inPreset(m: ModuleInfo, preset: TargetPreset): boolean {
  if (m.kind === 'conv' && m.groups !== 1) return false; // grouped/depthwise convs have no kohya LoRA form
  switch (preset) {
    case 'attention': return m.kind === 'linear' && ATTENTION.test(m.module);
    case 'attention_ff': return m.kind === 'linear' && (ATTENTION.test(m.module) || FEED_FORWARD.test(m.module));
    // 1×1 convs are linear layers applied per pixel (SD 1.x proj_in/proj_out): they count as linear.
    case 'all_linear': return isPointwise(m);
    case 'all_linear_conv': return true;
    default: throw new Error(`unknown target preset '${String(preset)}' (expected one of ${TARGET_PRESETS.join(', ')})`);
  }
}

/** Compiles one include/exclude pattern; a bad regular expression is reported with the pattern. */
export function compilePattern(pattern: string): RegExp {
  if (pattern.length >= 2 && pattern.startsWith('/') && pattern.endsWith('/')) {
    try { return new RegExp(pattern.slice(1, -1)); } catch (e) { throw new Error(`target pattern ${pattern}: ${(e as Error).message}`); }
  }
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** A predicate over modules implementing the spec. */
export function targetFilter(spec: TargetSpec = {}): (m: ModuleInfo) => boolean {
  const preset = spec.preset ?? 'attention_ff';
  if (!TARGET_PRESETS.includes(preset)) throw new Error(`unknown target preset '${preset}' (expected one of ${TARGET_PRESETS.join(', ')})`);
  const include = (spec.include ?? []).map(compilePattern);
  const exclude = (spec.exclude ?? []).map(compilePattern);
  return (m) => inPreset(m, preset)
    && (include.length === 0 || include.some((r) => r.test(m.module)))
    && !exclude.some((r) => r.test(m.module));
}

/** The modules a spec selects, in model order. */
export function selectTargets(modules: readonly ModuleInfo[], spec: TargetSpec = {}): ModuleInfo[] {
  const f = targetFilter(spec);
  return modules.filter(f);
}

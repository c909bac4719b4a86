// Merging an adapter into the frozen base weights on the host (W' = W + strength · ΔW), so sampling
// runs the plain model at full speed. Returns a new weight map; the base map is not changed.
import type { HostTensor } from '../tensor';
import type { AdapterSet } from './adapter-set';

export function mergeAdapter(
  base: ReadonlyMap<string, HostTensor>,
  set: AdapterSet,
  values: Record<string, HostTensor>,
  strength = 1,
): Map<string, HostTensor> {
  const merged = new Map(base);
  for (const m of set.modules) {
    const key = `${m.info.module}.weight`;
    const w = base.get(key);
    if (!w) throw new Error(`merge: base weights lack '${key}' (adapter module ${m.name})`);
    if (w.dtype !== 'float32') throw new Error(`merge: '${key}' is ${w.dtype}; merge into float32 weights`);
    const delta = m.weightDelta((k) => {
      const v = values[k];
      if (!v) throw new Error(`merge: adapter values lack '${k}'`);
      return v.data as Float32Array;
    });
    const src = w.data as Float32Array;
    if (delta.length !== src.length) throw new Error(`merge: '${key}' has ${src.length} values, the adapter delta ${delta.length}`);
    const out = new Float32Array(src.length);
    for (let i = 0; i < out.length; i++) out[i] = src[i] + strength * delta[i];
    merged.set(key, { dtype: 'float32', shape: [...w.shape], data: out });
  }
  return merged;
}

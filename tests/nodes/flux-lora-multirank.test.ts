// diffusers/PEFT FLUX LoRAs whose split projections (to_q, to_k, to_v, proj_mlp of one fused BFL qkv or
// linear1) have ranks and alphas of their own: the fused module is their block-diagonal combination
// (rank Σ ranks) and Load LoRA pads the other modules to that rank, so every BFL module's delta is
// exactly the sum of the diffusers deltas written into its rows.
import { describe, it, expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSafetensors, type TensorToWrite } from '../../kernels/io/safetensors';
import { flux1Family, tinyFlux1Config } from '../../kernels/flux/family1';
import { fluxModuleMapping } from '../../kernels/flux/keys';
import { fluxLoraDelta, readFluxLora } from '../../kernels/flux/lora';
import { fluxTransformerShapes } from '../../kernels/flux/shapes';
import type { LinearInfo } from '../../kernels/nn/builder';
import type { HostTensor } from '../../kernels';
import { Rng } from '../../kernels/random';
import { readLoraFile } from '../../nodes/models/lora-file';
import { adapterSetsFor } from '../../nodes/models/adapters';

const cfg = tinyFlux1Config();
const t = cfg.transformer;
const linears = new Map(fluxTransformerShapes(t).modules.filter((m): m is LinearInfo => m.kind === 'linear').map((m) => [m.module, m]));

/** diffusers module → [rank, alpha?] as a PEFT or converted file might hold them. */
const PARTS: Record<string, [number, number?]> = {
  'transformer_blocks.0.attn.to_q': [2],
  'transformer_blocks.0.attn.to_k': [3, 1.5],
  'transformer_blocks.0.attn.to_v': [2],
  'transformer_blocks.0.attn.to_out.0': [2],
  'single_transformer_blocks.0.attn.to_q': [2],
  'single_transformer_blocks.0.attn.to_k': [4, 2],
  'single_transformer_blocks.0.attn.to_v': [3, 6],
  'single_transformer_blocks.0.proj_mlp': [1],
};

/** The file's tensors and, per BFL module, the dense delta each diffusers part adds to its rows (B·A·α/r). */
function multiRankFile() {
  const rng = new Rng(17);
  const tensors = new Map<string, HostTensor>();
  const expected = new Map<string, Float32Array>();
  for (const [bfl, parts] of fluxModuleMapping(t)) {
    const info = linears.get(bfl)!;
    for (const p of parts) {
      const spec = PARTS[p.module];
      if (!spec) continue;
      const [rank, alpha] = spec;
      const rows = p.rows[1] - p.rows[0];
      const down = rng.fork(`${p.module}.A`).fillUniform(new Float32Array(rank * info.inFeatures), -1, 1);
      const up = rng.fork(`${p.module}.B`).fillUniform(new Float32Array(rows * rank), -1, 1);
      tensors.set(`transformer.${p.module}.lora_A.weight`, { dtype: 'float32', shape: [rank, info.inFeatures], data: down });
      tensors.set(`transformer.${p.module}.lora_B.weight`, { dtype: 'float32', shape: [rows, rank], data: up });
      if (alpha !== undefined) tensors.set(`transformer.${p.module}.alpha`, { dtype: 'float32', shape: [], data: Float32Array.of(alpha) });
      const delta = expected.get(bfl) ?? new Float32Array(info.outFeatures * info.inFeatures);
      const s = (alpha ?? rank) / rank;
      for (let o = 0; o < rows; o++) for (let i = 0; i < info.inFeatures; i++) {
        let v = 0;
        for (let r = 0; r < rank; r++) v += up[o * rank + r]! * down[r * info.inFeatures + i]!;
        delta[(p.rows[0] + o) * info.inFeatures + i] += v * s;
      }
      expected.set(bfl, delta);
    }
  }
  return { tensors, expected };
}

const worstDiff = (a: Float32Array, b: Float32Array) => a.reduce((w, v, i) => Math.max(w, Math.abs(v - b[i]!)), 0);

describe('FLUX diffusers LoRAs with per-projection ranks and alphas', () => {
  it('readFluxLora fuses q/k/v (and proj_mlp) of their own ranks into a block-diagonal LoRA of rank Σ ranks with the exact delta', () => {
    const { tensors, expected } = multiRankFile();
    const modules = readFluxLora(t, tensors);
    expect([...modules.keys()].sort()).toEqual(['double_blocks.0.img_attn.proj', 'double_blocks.0.img_attn.qkv', 'single_blocks.0.linear1']);
    expect(modules.get('double_blocks.0.img_attn.qkv')!.rank).toBe(7);
    expect(modules.get('single_blocks.0.linear1')!.rank).toBe(10);
    // Block structure: q's rows use only q's columns of the up matrix.
    const qkv = modules.get('double_blocks.0.img_attn.qkv')!;
    for (let o = 0; o < t.hiddenSize; o++) for (let r = 2; r < 7; r++) expect(qkv.up[o * 7 + r]).toBe(0);
    for (const [bfl, want] of expected) expect(worstDiff(fluxLoraDelta(modules.get(bfl)!), want), bfl).toBeLessThan(1e-5);
  });

  it('Load LoRA reads the file: one spec rank (the largest), lower ranks padded, every module\'s delta exact', async () => {
    const { tensors, expected } = multiRankFile();
    const path = join(mkdtempSync(join(tmpdir(), 'flux-multirank-')), 'peft.safetensors');
    await writeSafetensors(path, Object.fromEntries([...tensors].map(([k, v]): [string, TensorToWrite] => [k, { dtype: 'F32', shape: v.shape, data: v.data as Float32Array }])));
    const lora = await readLoraFile(path, cfg, flux1Family);
    expect(lora.format).toBe('diffusers');
    expect(lora.spec.rank).toBe(10);
    const sets = adapterSetsFor(lora.spec, { family: flux1Family, config: cfg });
    expect(sets.denoiser.modules.map((m) => m.info.module).sort()).toEqual([...expected.keys()].sort());
    for (const m of sets.denoiser.modules) {
      const info = m.info as LinearInfo;
      const down = lora.weights[`${m.name}.lora_down.weight`]!, up = lora.weights[`${m.name}.lora_up.weight`]!;
      expect(down.shape).toEqual([10, info.inFeatures]);
      const delta = fluxLoraDelta({ down: down.data as Float32Array, up: up.data as Float32Array, rank: m.rank, alpha: m.scale * m.rank, inFeatures: info.inFeatures, outFeatures: info.outFeatures });
      expect(worstDiff(delta, expected.get(info.module)!), info.module).toBeLessThan(1e-5);
    }
  });

  it('a part whose up matrix does not fit its rows is refused naming it', () => {
    const { tensors } = multiRankFile();
    const k = 'transformer.transformer_blocks.0.attn.to_k.lora_B.weight';
    tensors.set(k, { ...tensors.get(k)!, shape: [t.hiddenSize, 2], data: new Float32Array(t.hiddenSize * 2) });
    expect(() => readFluxLora(t, tensors)).toThrow(/LoRA 'transformer_blocks\.0\.attn\.to_k': down \[3,64\] \/ up \[64,2\] do not fit its 64 rows of double_blocks\.0\.img_attn\.qkv/);
  });
});

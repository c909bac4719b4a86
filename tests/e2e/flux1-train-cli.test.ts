// FLUX.1 [dev] end to end through `loragraph run`: a tiny FLUX.1-architecture model (guidance embedding,
// CLIP-L pooled into vector_in, T5 per-token text) written by the test as the files a user downloads — a
// BFL-named transformer with the tokenizer/ and tokenizer_2/ folders beside it, a CLIP-L and a T5 file in
// text_encoders/, an ae.safetensors in ldm names in vae/ — is loaded by Load Model with the encoders and
// VAE chosen on the node (sizes read from their tensors), trained with ai-toolkit's FLUX targets, saved
// as ai-toolkit saves FLUX.1 (diffusers' PEFT names under transformer., to_q/to_k/to_v split from qkv,
// no alpha) and sampled with UniPC at embedded guidance 3.5; the loss falls.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../server/paths';
import { loadSafetensors } from '../../kernels/io/safetensors';
import { vaeToLdm } from '../../kernels/sd/keys/single-file';
import { flux1Family, tinyFlux1Config, type Flux1FamilyConfig } from '../../kernels/flux/family1';
import { buildUnigramTokenizerJson } from '../../kernels/text/unigram-tokenizer-json';
import { expectLossFalls, fluxCliGraph, runCli, seededTensors, trainedLosses, writeF16, writeShapesDataset } from './fixtures';

// The tiny FLUX.1 with a CLIP of 64-wide heads (CLIP-L's, so Load Model reads its sizes from the tensors
// alone) and T5's relative-position distance of T5-XXL.
const tiny = tinyFlux1Config();
const cfg: Flux1FamilyConfig = {
  ...tiny,
  transformer: { ...tiny.transformer, pooledDim: 64 },
  clip: { ...tiny.clip, hiddenSize: 64, numHeads: 1, intermediateSize: 128 },
  t5: { ...tiny.t5, relativeMaxDistance: 128 },
};
const CAPTIONS = ['a red sks on a blue background', 'a red sks on a green background', 'a red sks on a white background', 'sks on a white background'];

/** models/: flux1/ (transformer + tokenizer/ + tokenizer_2/), text_encoders/ (CLIP-L, T5), vae/ (ae in ldm names). */
async function writeTinyFlux1(models: string): Promise<void> {
  for (const d of ['flux1/tokenizer', 'flux1/tokenizer_2', 'text_encoders', 'vae']) mkdirSync(join(models, d), { recursive: true });
  const [transformer, clip, t5, vae] = flux1Family.parts(cfg).map((p, i) => seededTensors((b) => p.trace(b), 31 + i));
  await writeF16(join(models, 'flux1', 'flux1-tiny.safetensors'), transformer!);
  await writeF16(join(models, 'text_encoders', 'clip_l-tiny.safetensors'), clip!);
  await writeF16(join(models, 'text_encoders', 't5-tiny.safetensors'), t5!, (k) => k, { loragraph_text_max_length: String(cfg.t5Length) });
  await writeF16(join(models, 'vae', 'ae-tiny.safetensors'), vae!, (k) => vaeToLdm(cfg.vae, k), { loragraph_vae_norm_groups: String(cfg.vae.normGroups) });
  const clipTokenizer = join(repoRoot, 'assets', 'tiny', 'tokenizer');
  for (const f of readdirSync(clipTokenizer)) copyFileSync(join(clipTokenizer, f), join(models, 'flux1', 'tokenizer', f));
  writeFileSync(join(models, 'flux1', 'tokenizer_2', 'tokenizer.json'), JSON.stringify(buildUnigramTokenizerJson(CAPTIONS)));
}

/** Load Model (encoders and VAE chosen) → Dataset → LoRA Target → Timestep Schedule → Train → Save LoRA (ai-toolkit) → Sampler (UniPC). */
function graph(steps: number) {
  return fluxCliGraph({
    loadModel: { checkpoint: 'flux1/flux1-tiny.safetensors', textEncoder: 'text_encoders/clip_l-tiny.safetensors', textEncoder2: 'text_encoders/t5-tiny.safetensors', vae: 'vae/ae-tiny.safetensors' },
    steps, loraName: 'flux1-e2e', sampler: { prompts: CAPTIONS[3], cfg: 3.5, sampler: 'unipc' },
  });
}

/** The PEFT names diffusers' FluxTransformer2DModel gives ai-toolkit's FLUX targets (written out from its module tree). */
const DOUBLE = ['attn.to_q', 'attn.to_k', 'attn.to_v', 'attn.to_out.0', 'ff.net.0.proj', 'ff.net.2', 'attn.add_q_proj', 'attn.add_k_proj', 'attn.add_v_proj', 'attn.to_add_out', 'ff_context.net.0.proj', 'ff_context.net.2'];
const SINGLE = ['attn.to_q', 'attn.to_k', 'attn.to_v', 'proj_mlp', 'proj_out'];
const STEPS = 24;

let data: string;
beforeAll(async () => {
  data = mkdtempSync(join(tmpdir(), 'lg-e2e-flux1-'));
  await writeTinyFlux1(join(data, 'models'));
  await writeShapesDataset(data);
});
afterAll(() => { if (data) rmSync(data, { recursive: true, force: true }); });

describe('FLUX.1 [dev] through the CLI', () => {
  it('trains a tiny FLUX.1 from BFL-named files, saves ai-toolkit\'s FLUX.1 keys, samples with UniPC, and the loss falls', async () => {
    const file = join(data, 'flux1.json');
    writeFileSync(file, JSON.stringify(graph(STEPS)));
    const r = runCli(data, file);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/FLUX\.1 · flux1-tiny/);

    const t = cfg.transformer;
    const saved = await loadSafetensors(join(data, 'output', 'flux1-e2e.safetensors'));
    const modules = [
      ...Array.from({ length: t.depthDouble }, (_, i) => DOUBLE.map((m) => `transformer_blocks.${i}.${m}`)).flat(),
      ...Array.from({ length: t.depthSingle }, (_, i) => SINGLE.map((m) => `single_transformer_blocks.${i}.${m}`)).flat(),
    ];
    expect([...saved.tensors.keys()].sort()).toEqual(modules.flatMap((m) => [`transformer.${m}.lora_A.weight`, `transformer.${m}.lora_B.weight`]).sort());
    // q, k and v share the fused qkv's down matrix and take its up matrix's rows; the MLP half of linear1 goes to proj_mlp.
    const a = (m: string) => saved.tensors.get(`transformer.${m}.lora_A.weight`)!;
    const b = (m: string) => saved.tensors.get(`transformer.${m}.lora_B.weight`)!;
    expect(a('transformer_blocks.0.attn.to_q').shape).toEqual([4, t.hiddenSize]);
    expect(a('transformer_blocks.0.attn.to_k').data).toEqual(a('transformer_blocks.0.attn.to_q').data);
    expect(b('transformer_blocks.0.attn.to_v').shape).toEqual([t.hiddenSize, 4]);
    expect(b('single_transformer_blocks.0.proj_mlp').shape).toEqual([t.hiddenSize * t.mlpRatio, 4]);
    expect(a('single_transformer_blocks.0.proj_out').shape).toEqual([4, t.hiddenSize * (1 + t.mlpRatio)]);
    expect([...saved.tensors].filter(([k]) => k.endsWith('lora_B.weight')).some(([, x]) => (x.data as Float32Array).some((v) => v !== 0))).toBe(true);
    expect(saved.metadata['modelspec.architecture']).toMatch(/^flux-1-dev/);

    const losses = await trainedLosses(data);
    expect(losses).toHaveLength(STEPS);
    expectLossFalls(losses);
    expect(readdirSync(join(data, 'temp')).some((f) => /^samples-.*\.png$/.test(f))).toBe(true);
  }, 900_000);
});

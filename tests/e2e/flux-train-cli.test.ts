// FLUX.2 [klein] end to end through `loragraph run`: a tiny klein-architecture model written by the test
// as the files a user downloads (a BFL-named transformer, a Qwen3 text encoder, an ae.safetensors in ldm
// names with its BatchNorm statistics, a tokenizer.json) is found and loaded by Load Model, trained with
// ai-toolkit's FLUX targets on a small dataset, saved in ai-toolkit's format (diffusion_model.….lora_A/B,
// no alpha) and sampled with flow Euler; the loss falls; a run killed with SIGKILL mid-training resumes
// from its checkpoint and ends bit-identical to an uninterrupted run.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../server/paths';
import * as K from '../../kernels';
import { loadSafetensors } from '../../kernels/io/safetensors';
import { vaeToLdm } from '../../kernels/sd/keys/single-file';
import { vaeDecode, vaeEncode } from '../../kernels/sd/vae';
import { ropeTables } from '../../kernels/dit/layers';
import { flux2Family, tinyFlux2Config } from '../../kernels/flux/family';
import { fluxTransformer, jointPositions } from '../../kernels/flux/transformer';
import { qwen3TextFeatures } from '../../kernels/flux/qwen3';
import { tinyFluxTokenizerJson } from '../../kernels/flux/tiny/pretrain';
import { familyAdapters } from '../../kernels/families/adapters';
import { expectLossFalls, fluxCliGraph, loragraphBin, runCli, seededTensors, trainCheckpointDirs, trainedLosses, writeF16, writeShapesDataset } from './fixtures';

const cfg = tinyFlux2Config();

/** models/: flux2-tiny.safetensors (BFL names, no prefix), qwen3-tiny.safetensors, ae.safetensors, tokenizer.json. */
async function writeTinyKlein(models: string): Promise<void> {
  mkdirSync(models, { recursive: true });
  const t = cfg.transformer;
  const transformer = seededTensors((b) => fluxTransformer(b, t, {
    img: K.input('i', [1, 4, t.inChannels]), txt: K.input('x', [1, 2, t.contextDim]), timesteps: K.input('t', [1]),
    rope: ropeTables(jointPositions(t, 2, 2, 2), t.axesDim, t.theta),
  }), 11);
  const text = seededTensors((b) => qwen3TextFeatures(b, cfg.text, K.input('ids', [1, 4], 'int64'), K.input('m', [1, 4])), 12);
  const vae = seededTensors((b) => { vaeEncode(b, cfg.vae, K.input('px', [1, 3, 32, 32])); vaeDecode(b, cfg.vae, K.input('z', [1, cfg.vae.latentChannels, 2, 2])); }, 13);
  const ch = cfg.vae.latentChannels * 4;
  vae.set('bn.running_mean', { dtype: 'float32', shape: [ch], data: new Float32Array(ch) });
  vae.set('bn.running_var', { dtype: 'float32', shape: [ch], data: new Float32Array(ch).fill(0.05) });
  await writeF16(join(models, 'flux2-tiny.safetensors'), transformer, (k) => k);
  await writeF16(join(models, 'qwen3-tiny.safetensors'), text, (k) => k, { loragraph_text_max_length: String(cfg.text.maxLength) });
  await writeF16(join(models, 'ae.safetensors'), vae, (k) => (k.startsWith('bn.') ? k : vaeToLdm(cfg.vae, k)), { loragraph_vae_norm_groups: String(cfg.vae.normGroups) });
  writeFileSync(join(models, 'tokenizer.json'), JSON.stringify(tinyFluxTokenizerJson(60)));
}

/** A data folder with the tiny klein and three 64² images of one red shape on different backgrounds. */
async function fluxDataDir(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'lg-e2e-flux-'));
  await writeTinyKlein(join(dir, 'models'));
  await writeShapesDataset(dir);
  return dir;
}

/** Load Model → Dataset → LoRA Target (ai-toolkit's FLUX targets) → Timestep Schedule → Train → Save LoRA (ai-toolkit) → Sampler. */
function graph(steps: number) {
  return fluxCliGraph({
    loadModel: { checkpoint: 'flux2-tiny.safetensors' }, steps, train: { saveEvery: 4, maxSavesToKeep: 2 },
    loraName: 'flux-e2e', sampler: { prompts: 'sks on a white background', cfg: 4, sampler: 'euler' },
  });
}

const checkpointsIn = (data: string) => trainCheckpointDirs(data).flatMap((c) => readdirSync(c));
const loraFile = (data: string) => join(data, 'output', 'flux-e2e.safetensors');
const STEPS = 32;

let clean: string, killed: string;
beforeAll(async () => { clean = await fluxDataDir(); killed = await fluxDataDir(); });
afterAll(() => { for (const d of [clean, killed]) if (d) rmSync(d, { recursive: true, force: true }); });

describe('FLUX.2 [klein] through the CLI', () => {
  it('trains a tiny klein from BFL-named files, saves ai-toolkit keys, samples, the loss falls, and resumes exactly after kill -9', async () => {
    const file = join(clean, 'flux.json');
    writeFileSync(file, JSON.stringify(graph(STEPS)));
    const a = runCli(clean, file);
    expect(a.status, a.stderr + a.stdout).toBe(0);
    expect(a.stderr).toMatch(/running Load Model/);
    expect(checkpointsIn(clean).sort()).toEqual([`step-${String(STEPS - 4).padStart(8, '0')}.safetensors`, `step-${String(STEPS).padStart(8, '0')}.safetensors`]);

    // The file: every key is ai-toolkit's name for a module of ai-toolkit's FLUX targets (qkv, proj, mlp.0,
    // mlp.2 of both streams; linear1/linear2 of the single blocks), lora_A/lora_B only, nothing else.
    const saved = await loadSafetensors(loraFile(clean));
    const sets = familyAdapters(flux2Family, cfg, { algo: 'lora', rank: 4, alpha: 4, targets: { preset: 'attention_ff' }, trainTextEncoder: false });
    const modules = sets.denoiser.modules.map((m) => m.info.module);
    expect(modules).toHaveLength(cfg.transformer.depthDouble * 8 + cfg.transformer.depthSingle * 2);
    const expected = modules.flatMap((m) => [`diffusion_model.${m}.lora_A.weight`, `diffusion_model.${m}.lora_B.weight`]);
    expect([...saved.tensors.keys()].sort()).toEqual(expected.sort());
    expect(saved.tensors.has('diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight')).toBe(true);
    expect(saved.tensors.has('diffusion_model.single_blocks.1.linear2.lora_B.weight')).toBe(true);
    expect(saved.tensors.get('diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight')!.shape).toEqual([4, cfg.transformer.hiddenSize]);
    const ups = [...saved.tensors].filter(([k]) => k.endsWith('lora_B.weight'));
    expect(ups.some(([, t]) => (t.data as Float32Array).some((v) => v !== 0))).toBe(true);

    // The loss falls: the last quarter of the steps averages below the first quarter.
    const losses = await trainedLosses(clean);
    expect(losses).toHaveLength(STEPS);
    expectLossFalls(losses);
    // The sampler rendered through the adapter.
    expect(readdirSync(join(clean, 'temp')).some((f) => /^samples-.*\.png$/.test(f))).toBe(true);

    // Killed once a mid-run checkpoint exists, then run again: resumes and ends with the same weights.
    const file2 = join(killed, 'flux.json');
    writeFileSync(file2, JSON.stringify(graph(STEPS)));
    const child = spawn(loragraphBin, ['run', file2, '--data-dir', killed], { cwd: repoRoot, stdio: 'ignore' });
    await new Promise<void>((resolve, reject) => {
      const t0 = Date.now();
      const poll = setInterval(() => {
        let found = false;
        try { found = checkpointsIn(killed).some((f) => Number(/^step-(\d{8})\.safetensors$/.exec(f)?.[1] ?? STEPS) < STEPS); } catch { /* cache not made yet */ }
        if (found) { clearInterval(poll); child.kill('SIGKILL'); resolve(); }
        else if (Date.now() - t0 > 300_000) { clearInterval(poll); child.kill('SIGKILL'); reject(new Error('no checkpoint appeared')); }
      }, 50);
    });
    await new Promise((r) => child.once('exit', r));
    expect(existsSync(loraFile(killed))).toBe(false);
    const b = runCli(killed, file2);
    expect(b.status, b.stderr + b.stdout).toBe(0);
    expect(b.stderr + b.stdout).toMatch(/resumed from/);
    const tb = (await loadSafetensors(loraFile(killed))).tensors;
    expect([...tb.keys()].sort()).toEqual([...saved.tensors.keys()].sort());
    for (const [k, v] of saved.tensors) expect(Buffer.from(tb.get(k)!.data.buffer).equals(Buffer.from(v.data.buffer)), k).toBe(true);
  }, 900_000);
});

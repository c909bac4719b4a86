// SDXL end to end through `loragraph run`: a tiny SDXL-config checkpoint in the real single-file layout
// (conditioner.embedders.*, SGM UNet names) is detected and loaded by Load Model, trained from a bucketed
// dataset of three aspect ratios with flips (size/crop micro-conditioning per sample), saved as a kohya
// LoRA whose keys are exactly kohya's SDXL names, and sampled; a run killed with SIGKILL mid-training
// resumes from its checkpoint and ends bit-identical to an uninterrupted run.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../server/paths';
import { loadSafetensors } from '../../kernels/io/safetensors';
import { saveSdxlSingleFile, seededSdxlFill, tinySdxlConfig, sdxlFamily } from '../../kernels/sdxl';
import { familyAdapters, kohyaModuleName, componentsOf } from '../../kernels/families/adapters';

const bin = join(repoRoot, 'bin', 'loragraph.js');
const cfg = tinySdxlConfig();

/** A data folder: models/tiny-sdxl.safetensors (single-file SDXL layout) and a dataset of three aspect ratios. */
async function sdxlDataDir(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'lg-e2e-sdxl-'));
  mkdirSync(join(dir, 'models'), { recursive: true });
  await saveSdxlSingleFile(join(dir, 'models', 'tiny-sdxl.safetensors'), cfg, seededSdxlFill(3, 0.05), { dtype: 'F16' });
  const ds = join(dir, 'datasets', 'shapes');
  mkdirSync(ds, { recursive: true });
  const images: [string, number, number, [number, number, number], string][] = [
    ['wide', 96, 60, [200, 40, 40], 'a red square on a white background'],
    ['tall', 60, 96, [40, 40, 200], 'a blue circle on a white background'],
    ['square', 72, 72, [40, 180, 40], 'a green triangle on a white background'],
  ];
  for (const [name, w, h, rgb, caption] of images) {
    const px = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const inside = x > w / 4 && x < (3 * w) / 4 && y > h / 4 && y < (3 * h) / 4 && x < w * 0.6; // asymmetric, so flips matter
      px.set(inside ? rgb : [250, 250, 250], (y * w + x) * 3);
    }
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(join(ds, `${name}.png`));
    writeFileSync(join(ds, `${name}.txt`), caption);
  }
  return dir;
}

/** Load Model → Dataset (buckets, flips) → LoRA Target → Train (save every 2) → Save LoRA → Sampler. */
function graph(steps: number) {
  return {
    '1': { class_type: 'LoadModel', inputs: { checkpoint: 'tiny-sdxl.safetensors' } },
    '2': { class_type: 'Dataset', inputs: { folder: 'shapes', triggerWord: 'sks', resolution: '64', bucketStep: 16, flipX: true } },
    '3': { class_type: 'LoraTarget', inputs: { rank: 4, alpha: 4, targetPreset: 'attention' } },
    '4': { class_type: 'Optimizer', inputs: { optimizer: 'AdamW', learningRate: 1e-3 } },
    '5': {
      class_type: 'Train',
      inputs: { model: ['1', 0], clip: ['1', 1], vae: ['1', 2], datasets: [['2', 0]], adapter: ['3', 0], optimizer: ['4', 0], steps, batchSize: 1, saveEvery: 2, maxSavesToKeep: 2, saveName: '' },
    },
    '6': { class_type: 'SaveLora', inputs: { training: ['5', 0], name: 'sdxl-e2e', dtype: 'fp32' } },
    '7': { class_type: 'Sampler', inputs: { model: ['1', 0], clip: ['1', 1], vae: ['1', 2], training: ['5', 0], prompts: 'sks a red square', steps: 2, cfg: 4, sampler: 'euler' } },
  };
}

function cli(data: string, file: string) {
  return spawnSync(bin, ['run', file, '--data-dir', data], { cwd: repoRoot, encoding: 'utf8', timeout: 600_000 });
}
const checkpointsIn = (data: string) => readdirSync(join(data, 'cache')).filter((d) => d.startsWith('Train')).flatMap((d) => {
  const c = join(data, 'cache', d, 'checkpoints');
  return existsSync(c) ? readdirSync(c) : [];
});
const loraFile = (data: string) => join(data, 'output', 'sdxl-e2e.safetensors');

let clean: string, killed: string;
beforeAll(async () => { clean = await sdxlDataDir(); killed = await sdxlDataDir(); });
afterAll(() => { for (const d of [clean, killed]) if (d) rmSync(d, { recursive: true, force: true }); });

describe('SDXL through the CLI', () => {
  it('trains a tiny SDXL checkpoint end to end, saves kohya SDXL names, samples, and resumes exactly after kill -9', async () => {
    const file = join(clean, 'sdxl.json');
    writeFileSync(file, JSON.stringify(graph(6)));
    const a = cli(clean, file);
    expect(a.status, a.stderr + a.stdout).toBe(0);
    expect(checkpointsIn(clean).sort()).toEqual(['step-00000004.safetensors', 'step-00000006.safetensors']);

    // The file: every key is kohya's SDXL name for a module the LoRA Target selected, and nothing else.
    const saved = await loadSafetensors(loraFile(clean));
    const sets = familyAdapters(sdxlFamily, cfg, { algo: 'lora', rank: 4, alpha: 4, targets: { preset: 'attention' }, trainTextEncoder: false });
    const unet = componentsOf(sdxlFamily, cfg).denoiser;
    const expected = sets.denoiser.modules.flatMap((m) => {
      const n = kohyaModuleName(unet, m.info.module);
      return [`${n}.lora_down.weight`, `${n}.lora_up.weight`, `${n}.alpha`];
    });
    expect([...saved.tensors.keys()].sort()).toEqual(expected.sort());
    // SGM paths as kohya writes them: input_blocks.4.1 is down_blocks.1.attentions.0 (no attention at level 0 here either).
    expect(saved.tensors.has('lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight')).toBe(true);
    expect([...saved.tensors.keys()].every((k) => /^lora_unet_(input_blocks_\d+_1|middle_block_1|output_blocks_\d+_1)_transformer_blocks_\d+_attn[12]_to_(q|k|v|out_0)\.(lora_down\.weight|lora_up\.weight|alpha)$/.test(k))).toBe(true);
    expect(saved.metadata.ss_base_model_version).toBe('sdxl_base_v1-0');
    expect(saved.metadata['modelspec.architecture']).toBe('stable-diffusion-xl-v1-base/lora');
    // The up weights moved from their zero init: it trained.
    const ups = [...saved.tensors].filter(([k]) => k.endsWith('lora_up.weight'));
    expect(ups.some(([, t]) => (t.data as Float32Array).some((v) => v !== 0))).toBe(true);
    // The sampler rendered through the adapter.
    expect(readdirSync(join(clean, 'temp')).some((f) => /^samples-.*\.png$/.test(f))).toBe(true);

    // Killed once a mid-run checkpoint exists, then run again: resumes and ends with the same weights.
    const file2 = join(killed, 'sdxl.json');
    writeFileSync(file2, JSON.stringify(graph(6)));
    const child = spawn(bin, ['run', file2, '--data-dir', killed], { cwd: repoRoot, stdio: 'ignore' });
    await new Promise<void>((resolve, reject) => {
      const t0 = Date.now();
      const poll = setInterval(() => {
        let found = false;
        try { found = checkpointsIn(killed).some((f) => /^step-0000000[24]\.safetensors$/.test(f)); } catch { /* cache not made yet */ }
        if (found) { clearInterval(poll); child.kill('SIGKILL'); resolve(); }
        else if (Date.now() - t0 > 480_000) { clearInterval(poll); child.kill('SIGKILL'); reject(new Error('no checkpoint appeared')); }
      }, 100);
    });
    await new Promise((r) => child.once('exit', r));
    expect(existsSync(loraFile(killed))).toBe(false);
    const b = cli(killed, file2);
    expect(b.status, b.stderr + b.stdout).toBe(0);
    expect(b.stderr + b.stdout).toMatch(/resumed from/);
    const tb = (await loadSafetensors(loraFile(killed))).tensors;
    expect([...tb.keys()].sort()).toEqual([...saved.tensors.keys()].sort());
    for (const [k, v] of saved.tensors) expect(Buffer.from(tb.get(k)!.data.buffer).equals(Buffer.from(v.data.buffer)), k).toBe(true);
  }, 1_500_000);
});

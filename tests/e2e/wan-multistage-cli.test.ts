// Wan 2.2 A14B-style multistage training end to end with the real nodes, on a tiny two-expert Wan I2V
// the test writes in ComfyUI's layout (diffusion_models/…_high_noise / _low_noise, text_encoders/ umT5 +
// tokenizer.json, vae/) and 5-frame clips made by ffmpeg: through `loragraph run`, killed with SIGKILL
// while each expert trains and run again, it ends with both experts' LoRA files bit-identical to an
// uninterrupted run; on a live server, changing switchEvery re-runs only Train and what follows it
// (with DOP on the I2V experts).
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as K from '../../kernels';
import { writeSafetensors, loadSafetensors, type TensorToWrite } from '../../kernels/io/safetensors';
import { buildUnigramTokenizerJson } from '../../kernels/text/unigram-tokenizer-json';
import { tinyWanConfig, wanFamily } from '../../kernels/wan/family';
import { repoRoot } from '../../server/paths';
import { loadRegistry } from '../../nodes/registry';
import { createServer } from '../../server/app';

const CAPTIONS = ['a red square moving left', 'a blue circle moving right'];
const tiny = tinyWanConfig({ i2v: true, experts: true });
const HIGH = 'diffusion_models/wan2.2-tiny_i2v_high_noise.safetensors';
const LOW = 'diffusion_models/wan2.2-tiny_i2v_low_noise.safetensors';

/** A data folder with the tiny two-expert Wan I2V in models/ and two captioned clips in datasets/clips. */
async function wanDataDir(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'lg-e2e-wan-'));
  const models = join(dir, 'models');
  for (const d of ['diffusion_models', 'text_encoders', 'vae']) mkdirSync(join(models, d), { recursive: true });
  const part = (id: string, seed: number) => {
    const rw = new K.RandomWeights(seed, 0.08);
    wanFamily.parts(tiny).find((p) => p.id === id)!.trace(new K.Builder(rw));
    return Object.fromEntries([...rw.tensors].map(([k, t]): [string, TensorToWrite] => [k, { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }]));
  };
  const heads = { loragraph_num_heads: String(tiny.transformer.numHeads) };
  await writeSafetensors(join(models, HIGH), part('transformer', 3), heads);
  await writeSafetensors(join(models, LOW), part('transformer', 4), heads);
  await writeSafetensors(join(models, 'text_encoders', 'umt5-tiny.safetensors'), part('text_encoder', 5));
  writeFileSync(join(models, 'text_encoders', 'umt5-tiny.tokenizer.json'), JSON.stringify(buildUnigramTokenizerJson(CAPTIONS)));
  await writeSafetensors(join(models, 'vae', 'wan-tiny-vae.safetensors'), part('vae', 6));
  const clips = join(dir, 'datasets', 'clips');
  mkdirSync(clips, { recursive: true });
  CAPTIONS.forEach((caption, i) => {
    // A moving test pattern, 8 frames at 8 fps, 32×32.
    execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `testsrc=size=32x32:rate=8:duration=1,hue=h=${i * 120}`,
      '-frames:v', '8', '-c:v', 'libx264', '-qp', '0', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', join(clips, `clip${i}.mp4`)]);
    writeFileSync(join(clips, `clip${i}.txt`), caption);
  });
  return dir;
}

type ApiGraph = Record<string, { class_type: string; inputs: Record<string, unknown>; _meta?: { title: string } }>;

/** Two Load Model nodes (the experts) → Dataset (5-frame clips) → LoRA Target → Train (multistage) → Loss Graph. */
function wanGraph(o: { steps: number; switchEvery: number; saveEvery?: number; dop?: boolean }): ApiGraph {
  const g: ApiGraph = {
    '1': { class_type: 'LoadModel', inputs: { checkpoint: HIGH } },
    '2': { class_type: 'LoadModel', inputs: { checkpoint: LOW } },
    '3': { class_type: 'Dataset', inputs: { folder: 'clips', resolution: '32', bucketStep: 32, numFrames: 5, videoModel: true, fps: 8 } },
    '4': { class_type: 'LoraTarget', inputs: { model: ['1', 0], rank: 4, alpha: 4, targetPreset: 'attention' } },
    '5': { class_type: 'Optimizer', inputs: { optimizer: 'AdamW', learningRate: 1e-3 } },
    '6': {
      class_type: 'Train', _meta: { title: 'Train Wan' },
      inputs: {
        model: ['1', 0], lowNoiseModel: ['2', 0], clip: ['1', 1], vae: ['1', 2], datasets: [['3', 0]], adapter: ['4', 0], optimizer: ['5', 0],
        steps: o.steps, batchSize: 1, switchEvery: o.switchEvery, saveEvery: o.saveEvery ?? 0, maxSavesToKeep: 0, saveName: 'wan', seed: 5,
        ...(o.dop ? { regularizer: ['8', 0] } : {}),
      },
    },
    '7': { class_type: 'LossGraph', inputs: { lossHistory: ['6', 1] } },
  };
  if (o.dop) g['8'] = { class_type: 'DOP', inputs: { preservationClass: 'shape' } };
  return g;
}

const bin = join(repoRoot, 'bin', 'loragraph.js');
const cli = (data: string, file: string) => spawnSync(bin, ['run', file, '--data-dir', data], { cwd: repoRoot, encoding: 'utf8', timeout: 300_000 });
const checkpointsIn = (data: string) => readdirSync(join(data, 'cache')).filter((d) => d.startsWith('Train')).flatMap((d) => {
  const c = join(data, 'cache', d, 'checkpoints');
  return existsSync(c) ? readdirSync(c).filter((f) => /^step-\d+\.safetensors$/.test(f)) : [];
});
const newestCheckpoint = (data: string) => Math.max(0, ...checkpointsIn(data).map((f) => Number(f.match(/\d+/)![0])));

/** Starts a run and SIGKILLs it once a checkpoint newer than `after` is written; returns that checkpoint's step. */
async function runUntilCheckpoint(data: string, file: string, after: number): Promise<number> {
  const child = spawn(bin, ['run', file, '--data-dir', data], { cwd: repoRoot, stdio: 'ignore' });
  const at = await new Promise<number>((resolve, reject) => {
    const t0 = Date.now();
    const poll = setInterval(() => {
      let newest = 0;
      try { newest = newestCheckpoint(data); } catch { /* cache not made yet */ }
      if (newest > after) { clearInterval(poll); child.kill('SIGKILL'); resolve(newest); }
      else if (Date.now() - t0 > 240_000) { clearInterval(poll); child.kill('SIGKILL'); reject(new Error('no checkpoint appeared')); }
    }, 50);
  });
  await new Promise((r) => child.once('exit', r));
  return at;
}

const dirs: string[] = [];
let data: string;
beforeAll(async () => { data = await wanDataDir(); dirs.push(data); }, 120_000);
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

// Steps 0–1 high noise, 2–3 low, 4–5 high (switchEvery 2); a checkpoint every 2 steps.
const stageAt = (step: number) => (Math.floor(step / 2) % 2 === 0 ? 'high_noise' : 'low_noise');

describe('multistage Wan training through the CLI', () => {
  it('saves a LoRA per expert; killed while either expert trains, it resumes and ends bit-identical to an uninterrupted run', async () => {
    const file = join(data, 'wan.json');
    writeFileSync(file, JSON.stringify(wanGraph({ steps: 6, switchEvery: 2, saveEvery: 2 })));
    const clean = await wanDataDir();
    dirs.push(clean);
    const a = cli(clean, file);
    expect(a.status, a.stderr).toBe(0);
    const saves = readdirSync(join(clean, 'output', 'wan')).sort();
    expect(saves).toEqual([2, 4, 6].flatMap((s) => ['high_noise', 'low_noise'].map((e) => `wan_${String(s).padStart(9, '0')}_${e}.safetensors`)).sort());

    // Kill at the first checkpoint, run again and kill at a later one, then run to the end. Each kill
    // lands as the step after the checkpoint starts: the expert training then is stageAt(checkpoint).
    const killedIn = new Set<string>();
    const first = await runUntilCheckpoint(data, file, 0);
    killedIn.add(stageAt(first));
    const second = await runUntilCheckpoint(data, file, first);
    killedIn.add(stageAt(second));
    expect([...killedIn].sort()).toEqual(['high_noise', 'low_noise']);
    const b = cli(data, file);
    expect(b.status, b.stderr).toBe(0);
    expect(b.stderr + b.stdout).toMatch(/resumed from/);
    for (const expert of ['high_noise', 'low_noise']) {
      const name = `wan_000000006_${expert}.safetensors`;
      const ta = (await loadSafetensors(join(clean, 'output', 'wan', name))).tensors;
      const tb = (await loadSafetensors(join(data, 'output', 'wan', name))).tensors;
      expect([...tb.keys()].sort()).toEqual([...ta.keys()].sort());
      expect(ta.size).toBeGreaterThan(0);
      for (const [k, v] of ta) expect(Buffer.from(tb.get(k)!.data.buffer).equals(Buffer.from(v.data.buffer)), `${expert} ${k}`).toBe(true);
    }
    // The experts learned different LoRAs.
    const hi = (await loadSafetensors(join(clean, 'output', 'wan', 'wan_000000006_high_noise.safetensors'))).tensors;
    const lo = (await loadSafetensors(join(clean, 'output', 'wan', 'wan_000000006_low_noise.safetensors'))).tensors;
    const up = [...hi.keys()].find((k) => k.endsWith('lora_up.weight'))!;
    expect(Buffer.from(hi.get(up)!.data.buffer).equals(Buffer.from(lo.get(up)!.data.buffer))).toBe(false);
  }, 600_000);
});

describe('multistage Wan training on a live server', () => {
  it('changing switchEvery re-runs only Train and what follows it (DOP on the I2V experts)', async () => {
    const registry = await loadRegistry();
    const server = await createServer({ registry, dataDir: data, port: 0, editorDir: null, log: () => {} });
    try {
      const post = async (graph: unknown) => {
        const r = await fetch(`${server.url}/api/prompt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: graph }) });
        const body = await r.json() as { promptId: string };
        for (;;) {
          const h = await (await fetch(`${server.url}/api/history/${body.promptId}`)).json() as Record<string, { status: string; executed: string[]; cached: string[]; error?: unknown }>;
          const e = h[body.promptId];
          if (e?.status && e.status !== 'running') return e;
          await new Promise((r) => setTimeout(r, 300));
        }
      };
      const first = await post(wanGraph({ steps: 2, switchEvery: 1, dop: true }));
      expect(first.status, JSON.stringify(first.error)).toBe('success');
      expect(first.executed).toEqual(expect.arrayContaining(['1', '2', '3', '4', '5', '6', '7', '8']));
      const second = await post(wanGraph({ steps: 2, switchEvery: 2, dop: true }));
      expect(second.status, JSON.stringify(second.error)).toBe('success');
      expect(second.executed.sort()).toEqual(['6', '7']);
      expect(second.cached).toEqual(expect.arrayContaining(['1', '2', '3', '4', '5', '8']));
    } finally {
      await server.close();
    }
  }, 600_000);
});

// npm run bench:train — LoRA training speed on the embedded tiny model (the quickstart's settings), and
// the share of the step loop's wall time spent outside ORT (data, JS, copies). Target: under 10%.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../nodes/models/load';
import { builtinTiny } from '../nodes/models/builtin';
import { buildDataset, defaultDatasetSettings } from '../nodes/data/dataset';
import { trainSd, type TrainSettings } from '../nodes/training/trainer';
import optimizerNode, { type OptimizerValue } from '../nodes/optimizer';
import { repoRoot } from '../server/paths';
import type { AdapterSpec } from '../nodes/sockets';
import { standaloneNodeContext } from '../server/executor/standalone';

if (!existsSync(builtinTiny.checkpoint)) throw new Error(`bench:train needs the tiny model (${builtinTiny.checkpoint}); run npm run pretrain:tiny`);
const parts = await loadModel('builtin:tiny');
const dataset = await buildDataset({ ...defaultDatasetSettings, folder: join(repoRoot, 'assets/demo-dataset'), triggerWord: 'sks', resolutions: [64] });
const optimizer = (await optimizerNode.execute({ inputs: {}, widgets: optimizerNode.widgets.parse({ learningRate: 3e-3 }), ctx: standaloneNodeContext() })).outputs.optimizer as OptimizerValue;
const adapter: AdapterSpec = {
  kind: 'adapter', algo: 'LoCon', rank: 8, alpha: 8, convRank: 8, convAlpha: 8, dropout: 0, factor: -1, fullMatrix: false,
  preset: 'all_linear_conv', include: [], exclude: [], trainTextEncoder: false, byteSize: () => 0,
};
const batchSize = Number(process.env.BATCH ?? 4);
const steps = Number(process.env.STEPS ?? 40);
const settings = (n: number): TrainSettings => ({
  steps: n, batchSize, gradientAccumulation: 1, seed: 1, lossType: 'mse', noiseOffset: 0, minSnrGamma: 0, ema: false, emaDecay: 0.99,
  cacheLatents: true, cacheTextEmbeddings: true, saveEvery: 0, maxSavesToKeep: 1, sampleEvery: 0, priorLossWeight: 1,
});
const dir = () => mkdtempSync(join(tmpdir(), 'lg-bench-train-'));
const cache = dir();
// Warm-up: compiles the step graph, creates the session, caches latents and text embeddings.
await trainSd({ ...parts, datasets: [dataset], adapter, optimizer }, settings(3), { checkpointDir: dir(), cacheDir: cache, id: 'warm' });
const r = await trainSd({ ...parts, datasets: [dataset], adapter, optimizer }, settings(steps), { checkpointDir: dir(), cacheDir: cache, id: 'bench' });
const { setupMs, loopMs, ortMs, steps: n } = r.timing;
console.log(`tiny model, LoCon rank 8 (linear + conv), batch ${batchSize}, ${n} steps`);
// Setup (graph build, state upload; the session itself is reused from the warm-up) happens once per
// run; the share below is of the step loop, where the next batch is drawn while ORT runs this one.
console.log(`setup_ms=${setupMs.toFixed(0)}`);
console.log(`it_per_s=${(n / (loopMs / 1000)).toFixed(2)} images_per_s=${((n * batchSize) / (loopMs / 1000)).toFixed(1)}`);
console.log(`ort_ms_per_step=${(ortMs / n).toFixed(1)} wall_ms_per_step=${(loopMs / n).toFixed(1)}`);
console.log(`outside_ort_share=${(1 - ortMs / loopMs).toFixed(3)}`);

// npm run eval:quickstart — runs graphs/quickstart.json, graphs/quickstart-dop.json, graphs/quickstart-flux.json and
// graphs/quickstart-video.json (the tiny Wan learning a motion; EVAL_GRAPHS=quickstart-video.json for it alone)
// (the tiny FLUX.2 [klein]) as shipped, over
// several training seeds, then samples trigger prompts (the star, in seen and new colours) and leak-test
// prompts (ordinary shapes, no trigger) with each saved LoRA file and measures with the shape analyzer
// how often the star appears. Targets: trigger ≥ 80%, leak ≤ 20%, and DOP leaking less than plain.
// EVAL_GRAPHS=quickstart-flux.json (comma-separated) evaluates only those graphs; EVAL_GRID=DIR writes each
// LoRA's samples as a sheet (DIR/<run>.png; a clip's frames in a row). Each graph's samples
// are rendered on its own model with its Sampler node's steps, CFG and sampler.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRegistry } from '../nodes/registry';
import { workflowToApi } from '../server/graph/workflow';
import { applyOverrides, parseSetArgument } from '../server/graph/set';
import { validateGraph } from '../server/validate';
import { Executor } from '../server/executor/executor';
import { projectPaths, repoRoot } from '../server/paths';
import { loadModel, type LoadedModel } from '../nodes/models/load';
import { readLoraFileFor } from '../nodes/models/lora-file';
import { renderSamples } from '../nodes/sampling/render';
import { analyzeImage } from '../kernels/sd/tiny/analyze';
import { analyzeClip } from '../kernels/wan/tiny/analyze';
import { writeGrid } from '../kernels/sd/tiny/eval';
import { parseClipCaption, renderClip, sampleClip } from '../kernels/wan/tiny/world';
import { TINY_WAN_SIZE } from '../kernels/wan/tiny/model';
import sharp from 'sharp';
import type { SamplerSettings } from '../nodes/sockets';
import { QUICKSTART_VIDEO } from './build-graphs';

const TRAIN_SEEDS = (process.env.EVAL_SEEDS ?? '1,2,3').split(',').map(Number);
// Extra --set overrides for both graphs, ';'-separated (for trying settings): EVAL_SET="Train.steps=400".
const EXTRA_SETS = (process.env.EVAL_SET ?? '').split(';').map((x) => x.trim()).filter(Boolean);
const SAMPLE_SEEDS = [11, 12];
// {trigger} becomes the graph's trigger word (the first training Dataset's).
const TRIGGER_PROMPTS = ['a red {trigger} on a blue background', 'a yellow {trigger} on a black background', 'a purple {trigger} on a white background', 'a green {trigger} on an orange background'];
const LEAK_PROMPTS = ['a red circle on a blue background', 'a yellow square on a black background', 'a purple triangle on a white background', 'a green circle on an orange background'];

const registry = await loadRegistry();
const dataDir = mkdtempSync(join(tmpdir(), 'lg-eval-'));
const paths = projectPaths(dataDir);
const executor = new Executor({ paths });
const GRAPHS = (process.env.EVAL_GRAPHS ?? 'quickstart.json,quickstart-dop.json,quickstart-flux.json,quickstart-video.json').split(',').map((x) => x.trim()).filter(Boolean);
/** The base models the graphs train, by Load Model checkpoint (built-in names), loaded once. */
const bases = new Map<string, Promise<LoadedModel>>();
const baseFor = (checkpoint: string) => bases.get(checkpoint) ?? bases.set(checkpoint, loadModel(checkpoint)).get(checkpoint)!;

/** The training seed and save names of one run, set on the Train and Save LoRA nodes by id (graphs give them their own titles). */
function runOverrides(api: ReturnType<typeof workflowToApi>, seed: number, name: string): string[] {
  const ids = (type: string) => Object.entries(api).filter(([, n]) => n.class_type === type).map(([id]) => id);
  return [...ids('Train').flatMap((id) => [`${id}.seed=${seed}`, `${id}.saveName=${name}`]), ...ids('SaveLora').map((id) => `${id}.name=${name}`)];
}

/** How a graph samples (its Sampler node's steps, CFG and sampler). */
interface Sampling { steps: number; cfg: number; sampler: SamplerSettings['sampler'] }
const settings = (prompts: string[], s: Sampling): SamplerSettings => ({
  kind: 'sampler_settings', prompts: prompts.flatMap((prompt) => SAMPLE_SEEDS.map((seed) => ({ prompt, seed }))),
  negativePrompt: '', seed: 0, walkSeed: false, steps: s.steps, cfg: s.cfg, sampler: s.sampler, scheduler: 'auto', width: 0, height: 0, loraStrength: 1, byteSize: () => 0,
});

/** Star counts in the trigger and leak-test samples of one LoRA file. */
async function rates(loraPath: string, triggerWord: string, base: LoadedModel, sampling: Sampling, grid?: string) {
  const lora = await readLoraFileFor(loraPath, base.model);
  const adapter = { spec: lora.spec, weights: lora.weights, strength: 1 };
  const withTrigger = await renderSamples({ ...base, settings: settings(TRIGGER_PROMPTS.map((p) => p.replace('{trigger}', triggerWord)), sampling), adapter });
  const withoutTrigger = await renderSamples({ ...base, settings: settings(LEAK_PROMPTS, sampling), adapter });
  let trigger = 0, leak = 0, shapeKept = 0;
  for (const im of withTrigger) if (analyzeImage(im.rgb, im.width, im.height).shape === 'star') trigger++;
  for (const im of withoutTrigger) {
    const a = analyzeImage(im.rgb, im.width, im.height);
    if (a.shape === 'star') leak++;
    if (im.prompt.prompt.includes(a.shape)) shapeKept++;
  }
  // EVAL_GRID=DIR: the samples as one sheet per LoRA (trigger prompts, then leak-test prompts; a row each).
  if (grid) await writeGrid(grid, [...withTrigger, ...withoutTrigger].map((im) => im.rgb), SAMPLE_SEEDS.length * 2, withTrigger[0].width);
  return { trigger, triggerN: withTrigger.length, leak, leakN: withoutTrigger.length, shapeKept };
}

async function evalGraph(file: string) {
  const api0 = workflowToApi(JSON.parse(readFileSync(join(repoRoot, 'graphs', file), 'utf8')), registry);
  let trigger = 0, triggerN = 0, leak = 0, leakN = 0, leakShapeKept = 0;
  const started = performance.now();
  const nodeOf = (type: string) => Object.values(api0).find((n) => n.class_type === type);
  const base = await baseFor(String(nodeOf('LoadModel')?.inputs.checkpoint ?? 'builtin:tiny'));
  const samplerInputs = nodeOf('Sampler')?.inputs ?? {};
  const sampling: Sampling = { steps: Number(samplerInputs.steps ?? 20), cfg: Number(samplerInputs.cfg ?? 6), sampler: String(samplerInputs.sampler ?? 'euler_ancestral') as Sampling['sampler'] };
  for (const seed of TRAIN_SEEDS) {
    const name = `eval-${file.replace('.json', '')}-${seed}`;
    const api = applyOverrides(api0, registry, [...runOverrides(api0, seed, name), ...EXTRA_SETS].map(parseSetArgument));
    const v = validateGraph(api, registry);
    if (!v.ok) throw new Error(`${file}: ${JSON.stringify(v.nodeErrors)}`);
    const triggerWord = String(Object.values(api).find((n) => n.class_type === 'Dataset' && !n.inputs.isRegularization)?.inputs.triggerWord ?? '');
    if (!triggerWord) throw new Error(`${file}: its training Dataset has no trigger word`);
    const t0 = performance.now();
    const r = await executor.run(v.graph, { promptId: name, signal: new AbortController().signal, emit: () => {} });
    if (r.status !== 'success') throw new Error(`${file} (seed ${seed}): ${JSON.stringify(r.error)}`);
    const trainSeconds = (performance.now() - t0) / 1000;
    // EVAL_CHECKPOINTS=1: also the Train node's periodic saves, to see both rates develop over the run.
    if (process.env.EVAL_CHECKPOINTS) {
      const dir = join(paths.output, name);
      for (const f of existsSync(dir) ? readdirSync(dir).filter((x) => x.endsWith('.safetensors')).sort() : []) {
        const c = await rates(join(dir, f), triggerWord, base, sampling);
        console.log(`  ${f}: star in ${c.trigger}/${c.triggerN} trigger samples, ${c.leak}/${c.leakN} leak-test samples`);
      }
    }
    const grid = process.env.EVAL_GRID ? join(process.env.EVAL_GRID, `${name}.png`) : undefined;
    const c = await rates(join(paths.output, `${name}.safetensors`), triggerWord, base, sampling, grid);
    trigger += c.trigger; triggerN += c.triggerN; leak += c.leak; leakN += c.leakN; leakShapeKept += c.shapeKept;
    console.log(`${file} seed ${seed}: graph ran in ${trainSeconds.toFixed(1)} s; star in ${c.trigger}/${c.triggerN} trigger samples, ${c.leak}/${c.leakN} leak-test samples`);
  }
  const result = { triggerRate: trigger / triggerN, leakRate: leak / leakN, leakShapeKept: leakShapeKept / leakN, seconds: (performance.now() - started) / 1000 };
  console.log(`${file}: trigger_concept_rate=${result.triggerRate.toFixed(3)} leak_rate=${result.leakRate.toFixed(3)} leak_prompts_keep_their_shape=${result.leakShapeKept.toFixed(3)}`);
  return result;
}

const met = (r: { triggerRate: number; leakRate: number }) => `trigger >= 0.8: ${r.triggerRate >= 0.8 ? 'met' : 'NOT met'}; leak <= 0.2: ${r.leakRate <= 0.2 ? 'met' : 'NOT met'}`;
if (GRAPHS.includes('quickstart.json')) {
  const plain = await evalGraph('quickstart.json');
  if (!process.env.EVAL_PLAIN_ONLY && GRAPHS.includes('quickstart-dop.json')) {
    const dop = await evalGraph('quickstart-dop.json');
    console.log(`targets: ${met(plain)}; DOP leaks less: ${dop.leakRate < plain.leakRate ? 'yes' : dop.leakRate === plain.leakRate ? 'equal' : 'no'}`);
    console.log(`dop_leak_rate=${dop.leakRate.toFixed(3)} plain_leak_rate=${plain.leakRate.toFixed(3)}`);
  }
}
// The video quickstart (the tiny Wan 2.2 I2V learns "bouncing"): clips with the trigger motion should
// bounce, clips of the pretrained motions should keep their direction and not bounce.
const VIDEO_TRIGGER_PROMPTS = ['a red circle {trigger} on a blue background', 'a yellow triangle {trigger} on a black background', 'a white square {trigger} on a purple background', 'a green circle {trigger} on an orange background'];
const VIDEO_LEAK_PROMPTS = ['a red circle moving left on a blue background', 'a yellow triangle moving right on a black background', 'a white square moving up on a purple background', 'a green circle moving down on an orange background'];

/**
 * Each expert's LoRA of a run: Save LoRA's final pair (`<name>_high_noise.safetensors` in the output folder),
 * else the newest periodic save of each expert in the Train node's folder.
 */
function expertFiles(output: string, name: string): { high_noise: string; low_noise: string } {
  const dir = join(output, name);
  const pick = (expert: string) => {
    const saved = join(output, `${name}_${expert}.safetensors`);
    if (existsSync(saved)) return saved;
    const f = (existsSync(dir) ? readdirSync(dir) : []).filter((x) => x.endsWith(`_${expert}.safetensors`)).sort().at(-1);
    if (!f) throw new Error(`${output}: no ${expert} LoRA saved for ${name} (the video quickstart's Save LoRA and Train write one file per expert)`);
    return join(dir, f);
  };
  return { high_noise: pick('high_noise'), low_noise: pick('low_noise') };
}

const VIDEO_T2V = process.env.EVAL_VIDEO_T2V === '1';

/**
 * A PNG of the first frame of a world clip matching an evaluation prompt ("a red circle bouncing on a blue
 * background", "… moving left …"): its shape, colours and where that motion starts.
 */
async function firstFrameOf(prompt: string, seed: number): Promise<Uint8Array> {
  const c = parseClipCaption(prompt);
  if (!c?.shape) throw new Error(`eval:quickstart: "${prompt}" is not a caption of the moving-shapes world`);
  const clip = sampleClip(seed, {
    shapes: [c.shape], colors: [c.color], backgrounds: [c.background], directions: [c.direction], frames: [QUICKSTART_VIDEO.frames], motion: c.motion,
  });
  return sharp(renderClip(clip, TINY_WAN_SIZE)[0], { raw: { width: TINY_WAN_SIZE, height: TINY_WAN_SIZE, channels: 3 } }).png().toBuffer();
}

async function evalVideoGraph(file: string) {
  const api0 = workflowToApi(JSON.parse(readFileSync(join(repoRoot, 'graphs', file), 'utf8')), registry);
  const train = Object.values(api0).find((n) => n.class_type === 'Train')!;
  const modelOf = (link: unknown) => String(api0[String((link as [string, number])[0])].inputs.checkpoint);
  const high = await baseFor(modelOf(train.inputs.model));
  const low = await baseFor(modelOf(train.inputs.lowNoiseModel));
  const boundary = Number((high.model.source.config as { experts?: { boundary: number } }).experts?.boundary ?? 0.9);
  const samplerInputs = Object.values(api0).find((n) => n.class_type === 'Sampler')?.inputs ?? {};
  const sampling: Sampling = { steps: Number(samplerInputs.steps ?? 20), cfg: Number(samplerInputs.cfg ?? 5), sampler: 'euler' };
  const clips = (prompts: string[]): SamplerSettings => ({ ...settings(prompts, sampling), numFrames: QUICKSTART_VIDEO.frames, fps: 16 } as SamplerSettings);
  let bounce = 0, bounceN = 0, leak = 0, kept = 0, leakN = 0;
  const started = performance.now();
  for (const seed of TRAIN_SEEDS) {
    const name = `eval-${file.replace('.json', '')}-${seed}`;
    const api = applyOverrides(api0, registry, [...runOverrides(api0, seed, name), ...EXTRA_SETS].map(parseSetArgument));
    const v = validateGraph(api, registry);
    if (!v.ok) throw new Error(`${file}: ${JSON.stringify(v.nodeErrors)}`);
    const trigger = String(Object.values(api).find((n) => n.class_type === 'Dataset')?.inputs.triggerWord ?? '');
    const t0 = performance.now();
    const r = await executor.run(v.graph, { promptId: name, signal: new AbortController().signal, emit: () => {} });
    if (r.status !== 'success') throw new Error(`${file} (seed ${seed}): ${JSON.stringify(r.error)}`);
    const trainSeconds = (performance.now() - t0) / 1000;
    const files = expertFiles(paths.output, name);
    const adapterOf = async (path: string, m: LoadedModel) => { const l = await readLoraFileFor(path, m.model); return { spec: l.spec, weights: l.weights, strength: 1 }; };
    const lowNoise = { model: low.model, adapter: await adapterOf(files.low_noise, low), boundary };
    const adapter = await adapterOf(files.high_noise, high);
    // As an I2V LoRA is used: each prompt's clips start from a first frame of its own (rendered by the
    // world the clips come from); EVAL_VIDEO_T2V=1 samples text to video instead (no first frame).
    const render = async (prompts: string[]) => (await Promise.all(prompts.map(async (prompt, i) => renderSamples({
      ...high, settings: clips([prompt]), adapter, lowNoise,
      ...(VIDEO_T2V ? {} : { startImage: { data: await firstFrameOf(prompt, seed * 101 + i), what: `first frame of "${prompt}"` } }),
    })))).flat();
    let b = 0, l = 0, k = 0;
    const withTrigger = await render(VIDEO_TRIGGER_PROMPTS.map((p) => p.replace('{trigger}', trigger)));
    for (const im of withTrigger) if (im.video && analyzeClip(im.video.frames, im.width).bounced) b++;
    const withoutTrigger = await render(VIDEO_LEAK_PROMPTS);
    // EVAL_GRID=DIR: one row per clip, its frames left to right (trigger clips, then leak-test clips).
    if (process.env.EVAL_GRID) {
      const clips = [...withTrigger, ...withoutTrigger].filter((im) => im.video);
      await writeGrid(join(process.env.EVAL_GRID, `${name}.png`), clips.flatMap((im) => im.video!.frames), QUICKSTART_VIDEO.frames, withTrigger[0].width);
    }
    for (const im of withoutTrigger) {
      if (!im.video) continue;
      const a = analyzeClip(im.video.frames, im.width);
      if (a.bounced) l++;
      if (im.prompt.prompt.includes(`moving ${a.direction}`)) k++;
    }
    bounce += b; bounceN += withTrigger.length; leak += l; kept += k; leakN += withoutTrigger.length;
    console.log(`${file} seed ${seed} (${VIDEO_T2V ? 'text to video' : 'from a first frame'}): graph ran in ${trainSeconds.toFixed(1)} s; bouncing in ${b}/${withTrigger.length} trigger clips, ${l}/${withoutTrigger.length} leak-test clips (${k} kept their direction)`);
  }
  const result = { triggerRate: bounce / bounceN, leakRate: leak / leakN, directionKept: kept / leakN, seconds: (performance.now() - started) / 1000 };
  console.log(`${file}: trigger_motion_rate=${result.triggerRate.toFixed(3)} leak_rate=${result.leakRate.toFixed(3)} leak_prompts_keep_their_direction=${result.directionKept.toFixed(3)}`);
  return result;
}

if (GRAPHS.includes('quickstart-video.json')) {
  const video = await evalVideoGraph('quickstart-video.json');
  console.log(`quickstart-video.json targets: ${met(video)}; ${(video.seconds / TRAIN_SEEDS.length).toFixed(0)} s per seed (graph and eval clips)`);
}
if (GRAPHS.includes('quickstart-flux.json')) {
  const flux = await evalGraph('quickstart-flux.json');
  console.log(`quickstart-flux.json targets: ${met(flux)}; ${(flux.seconds / TRAIN_SEEDS.length).toFixed(0)} s per seed (graph and eval samples)`);
}
rmSync(dataDir, { recursive: true, force: true });

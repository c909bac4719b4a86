// Writes the example graphs in graphs/ (editor workflow JSON) from their compact API form, laid out
// by hand: `npx tsx scripts/build-graphs.ts [file.json …]`. The files are committed; edit this script, not the JSON.
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRegistry, type NodeRegistry } from '../nodes/registry';
import { apiToWorkflow } from '../server/graph/workflow';
import { repoRoot } from '../server/paths';
import type { ApiGraph } from '../server/protocol';

export const QUICKSTART_PROMPTS = [
  'a red sks on a blue background',
  'a purple sks on a white background',
  'a yellow circle on a green background',
];

/** Node heights below the title bar, each with room for what the node shows after a Run (measured in the editor at
 *  these widths; a node that needs more grows and pushes its neighbours aside, see editor/canvas/pushLayout.ts). */
const SIZE = {
  loadModel: 282, // checkpoint, clip skip, precision, family, text encoders, VAE, CLIP vision, offload
  dataset: 834, // widgets (imageToVideo among them), then the contact sheet fitted to 256 px
  loraTarget: 314,
  optimizer: 338,
  dop: 146,
  samplerSettings: 410, // + frames, fps, high-noise CFG, start and end image for video families (what litegraph lays them out in)
  timesteps: 408, // widgets, then the timestep histogram
  train: 984, // widgets, then the live loss chart, the latest samples (3 × 128 px) and the "All samples" line
  sampler: 882, // widgets (endImage among them), then the samples: 3 prompts × without | with the LoRA, 128 px each
  saveLora: 146,
  loss: 212, // the loss chart
};
const TITLE = 30;
/** Between a node and the title bar of the one below it: room for a progress bar above a title. */
const GAP_Y = 40;
const GAP_X = 30;

type Layout = Record<string, [number, number, number, number]>;
type Columns = [number, [string, number][]][];

/** Nodes stacked in columns (width, then each node id with its height), left to right in the order data flows. */
function columnLayout(columns: Columns): Layout {
  const layout: Layout = {};
  let x = 0;
  for (const [width, nodes] of columns) {
    let y = TITLE;
    for (const [id, height] of nodes) {
      layout[id] = [x, y, width, height];
      y += height + GAP_Y + TITLE;
    }
    x += width + GAP_X;
  }
  return layout;
}

function quickstart(withDop: boolean): { api: ApiGraph; layout: Record<string, [number, number, number, number]> } {
  const api: ApiGraph = {
    '1': { class_type: 'LoadModel', inputs: { checkpoint: 'builtin:tiny', clipSkip: 1 }, _meta: { title: 'Load Model' } },
    // 16 stars captioned with the trigger plus 8 ordinary shapes captioned by name: the contrast keeps
    // the star on the trigger word instead of on the colour words every caption shares.
    '2': { class_type: 'Dataset', inputs: { folder: 'demo-star', triggerWord: 'sks', resolution: '64', bucketStep: 64, repeats: 1 }, _meta: { title: 'Dataset: stars' } },
    // LoCon: a new shape needs the ResNet convs too, not only attention.
    '3': { class_type: 'LoraTarget', inputs: { model: ['1', 0], networkType: 'LoCon', rank: 8, alpha: 8, convRank: 8, convAlpha: 8, targetPreset: 'all_linear_conv' }, _meta: { title: 'LoRA Target' } },
    '4': { class_type: 'Optimizer', inputs: { optimizer: 'AdamW', learningRate: 3e-3, lrScheduler: 'constant', warmupSteps: 10 }, _meta: { title: 'Optimizer' } },
    '5': { class_type: 'TimestepSchedule', inputs: { timestepType: 'linear', timestepBias: 'balanced' }, _meta: { title: 'Timestep Schedule' } },
    '6': { class_type: 'SamplerSettings', inputs: { prompts: QUICKSTART_PROMPTS.join('\n'), seed: 7, walkSeed: true, steps: 20, cfg: 6, sampler: 'euler_ancestral' }, _meta: { title: 'Samples during training' } },
    '7': {
      class_type: 'Train',
      inputs: {
        model: ['1', 0], clip: ['1', 1], vae: ['1', 2], datasets: [['2', 0]], adapter: ['3', 0], optimizer: ['4', 0], schedule: ['5', 0], samplerSettings: ['6', 0],
        // min-SNR-γ 5 (kohya's usual value) learns the star's outline sooner, at the high-noise steps.
        steps: 400, batchSize: 4, seed: 1, minSnrGamma: 5, sampleEvery: 100, saveEvery: 100, saveName: withDop ? 'star-dop' : 'star', cacheLatents: true, cacheTextEmbeddings: true,
        ...(withDop ? { regularizer: ['9', 0] } : {}),
      },
      _meta: { title: 'Train' },
    },
    '8': { class_type: 'Sampler', inputs: { model: ['1', 0], clip: ['1', 1], vae: ['1', 2], training: ['7', 0], prompts: QUICKSTART_PROMPTS.join('\n'), seed: 7, walkSeed: true, steps: 20, cfg: 6, sampler: 'euler_ancestral', compare: true }, _meta: { title: 'Sampler: trigger, new colour, leak test' } },
    '10': { class_type: 'SaveLora', inputs: { training: ['7', 0], name: withDop ? 'star-dop' : 'star', fileName: '{name}', format: 'kohya', dtype: 'fp16' }, _meta: { title: 'Save LoRA' } },
    '11': { class_type: 'LossGraph', inputs: { lossHistory: ['7', 1] }, _meta: { title: 'Loss' } },
  };
  if (withDop) {
    api['12'] = { class_type: 'Dataset', inputs: { folder: 'demo-reg', resolution: '64', bucketStep: 64, isRegularization: true }, _meta: { title: 'Dataset: regularization shapes' } };
    api['9'] = { class_type: 'DOP', inputs: { regularization: ['12', 0], preservationClass: 'shape', lossMultiplier: 1 }, _meta: { title: 'DOP' } };
  }
  // Columns in the order data flows, each node sized for what it shows after Run (the loss chart and latest samples
  // on Train, the samples on the Sampler, the contact sheet, histogram and loss chart), so nothing grows or overlaps
  // and all of it is in view at the editor's default zoom on a 1600×1000 window.
  const columns: [number, [string, number][]][] = withDop
    ? [
        [272, [['1', SIZE.loadModel], ['2', SIZE.dataset]]],
        [272, [['12', SIZE.dataset]]],
        [256, [['3', SIZE.loraTarget], ['4', SIZE.optimizer], ['9', SIZE.dop]]],
        [272, [['6', SIZE.samplerSettings], ['5', SIZE.timesteps]]],
        [404, [['7', SIZE.train]]],
        [300, [['8', SIZE.sampler]]],
        [272, [['10', SIZE.saveLora], ['11', SIZE.loss]]],
      ]
    : [
        [272, [['1', SIZE.loadModel], ['2', SIZE.dataset]]],
        [256, [['3', SIZE.loraTarget], ['4', SIZE.optimizer]]],
        [272, [['6', SIZE.samplerSettings], ['5', SIZE.timesteps]]],
        [404, [['7', SIZE.train]]],
        [300, [['8', SIZE.sampler]]],
        [272, [['10', SIZE.saveLora], ['11', SIZE.loss]]],
      ];
  return { api, layout: columnLayout(columns) };
}

/** Tunable numbers of the FLUX quickstart (eval:quickstart checks them: trigger ≥ 0.8, leak ≤ 0.2 over 3 seeds). */
// Tried on the tiny klein of 05:52 (CPU, 3 prompts × 2 seeds): lr 2e-3 rank 8 barely moves the samples in 300 steps;
// lr 8e-3 rank 16 with uniform (linear) timesteps over 400 steps draws the most stars under the trigger.
// On the 8-channel tiny klein (eval:quickstart, 3 seeds): 400 steps trigger 0.125, leak 0.29; 1000 steps
// trigger 0.125, leak 0.04 in 114–130 s a graph — the same stars, far less of them in ordinary prompts.
// The grown tiny klein (6 + 6 blocks) takes twice as long a step: 1000 steps ran 181 s a graph; 800 steps
// 177–196 s over 3 seeds (trigger 0.04, leak 0.08); 600 steps 123–148 s (trigger 0, leak 0.08), inside 3 minutes.
// Sample sheets (EVAL_GRID) then showed lr 8e-3 wrecking the model — ordinary prompts kept their shape 0.21 of
// the time, colours swapped, a dotted grid over the image. A LoRA on the text encoder too lets "sks" become
// its own word instead of the transformer relearning how captions read: lr 2e-3, shifted timesteps (where
// the sampler spends its steps), text encoder trained — 3 seeds: trigger 0.21, leak 0.08, ordinary prompts
// keep their shape 0.71 (1 seed each, without the text encoder: lr 1e-3 0.125 / 0.50, lr 2e-3 0 / 0.63;
// with it: linear timesteps 0 / 0.38, lr 1e-3 0 / 0.50, lr 3e-3 0.125 / 0.63). On the stage-D tiny klein
// (shape 79%), 3 seeds: trigger 0.29, leak 0.125, keep their shape 0.46, the yellow stars star-shaped, graphs
// 158–205 s on one thread beside a pretraining run, 143 s on two idle threads. FLUX.2 ai-toolkit files hold the transformer alone, so
// Save LoRA writes kohya's format (lora_unet_… and lora_te1_…).
export const QUICKSTART_FLUX = {
  steps: 600, batchSize: 4, learningRate: 2e-3, rank: 16, timestepType: 'shift', trainTextEncoder: true, saveFormat: 'kohya', samplerSteps: 20, cfg: 4,
};

/**
 * The FLUX.2 [klein] quickstart: the same star lesson on the built-in tiny klein, with FLUX's usual
 * settings — ai-toolkit's FLUX targets (qkv, proj, mlp of both streams; linear1/linear2) and flow Euler
 * previews with true CFG against the empty prompt — plus a LoRA on the tiny text encoder (see QUICKSTART_FLUX).
 */
function quickstartFlux(): { api: ApiGraph; layout: Record<string, [number, number, number, number]> } {
  const q = QUICKSTART_FLUX;
  const sampling = { prompts: QUICKSTART_PROMPTS.join('\n'), seed: 7, walkSeed: true, steps: q.samplerSteps, cfg: q.cfg, sampler: 'euler' };
  const api: ApiGraph = {
    '1': { class_type: 'LoadModel', inputs: { checkpoint: 'builtin:tiny-flux', clipSkip: 1 }, _meta: { title: 'Load Model' } },
    '2': { class_type: 'Dataset', inputs: { folder: 'demo-star', triggerWord: 'sks', resolution: '64', bucketStep: 64, repeats: 1 }, _meta: { title: 'Dataset: stars' } },
    '3': { class_type: 'LoraTarget', inputs: { model: ['1', 0], networkType: 'LoRA', rank: q.rank, alpha: q.rank, targetPreset: 'attention_ff', trainTextEncoder: q.trainTextEncoder }, _meta: { title: 'LoRA Target' } },
    '4': { class_type: 'Optimizer', inputs: { optimizer: 'AdamW', learningRate: q.learningRate, lrScheduler: 'constant', warmupSteps: 10 }, _meta: { title: 'Optimizer' } },
    '5': { class_type: 'TimestepSchedule', inputs: { timestepType: q.timestepType, timestepBias: 'balanced' }, _meta: { title: 'Timestep Schedule' } },
    '6': { class_type: 'SamplerSettings', inputs: sampling, _meta: { title: 'Samples during training' } },
    '7': {
      class_type: 'Train',
      inputs: {
        model: ['1', 0], clip: ['1', 1], vae: ['1', 2], datasets: [['2', 0]], adapter: ['3', 0], optimizer: ['4', 0], schedule: ['5', 0], samplerSettings: ['6', 0],
        steps: q.steps, batchSize: q.batchSize, seed: 1, sampleEvery: 100, saveEvery: 100, saveName: 'star-flux', cacheLatents: true, cacheTextEmbeddings: true,
      },
      _meta: { title: 'Train' },
    },
    '8': { class_type: 'Sampler', inputs: { model: ['1', 0], clip: ['1', 1], vae: ['1', 2], training: ['7', 0], ...sampling, compare: true }, _meta: { title: 'Sampler: trigger, new colour, leak test' } },
    '10': { class_type: 'SaveLora', inputs: { training: ['7', 0], name: 'star-flux', fileName: '{name}', format: q.saveFormat, dtype: 'fp16' }, _meta: { title: 'Save LoRA' } },
    '11': { class_type: 'LossGraph', inputs: { lossHistory: ['7', 1] }, _meta: { title: 'Loss' } },
  };
  const columns: [number, [string, number][]][] = [
    [272, [['1', SIZE.loadModel], ['2', SIZE.dataset]]],
    [256, [['3', SIZE.loraTarget], ['4', SIZE.optimizer]]],
    [272, [['6', SIZE.samplerSettings], ['5', SIZE.timesteps]]],
    [404, [['7', SIZE.train]]],
    [300, [['8', SIZE.sampler]]],
    [272, [['10', SIZE.saveLora], ['11', SIZE.loss]]],
  ];
  return { api, layout: columnLayout(columns) };
}

/**
 * Prompts of the video quickstart, both of the red circle its previews start from (QUICKSTART_VIDEO_START,
 * an I2V LoRA is sampled from an image): the new motion, and the leak test (a pretrained motion).
 */
export const QUICKSTART_VIDEO_PROMPTS = [
  'a red circle bouncing on a blue background',
  'a red circle moving right on a blue background',
];
/** The first frame of the video quickstart's previews, an example file of the input folder (server/examples.ts). */
export const QUICKSTART_VIDEO_START = 'bounce-start.png';

/** Tunable numbers of the video quickstart (eval:quickstart checks them: bounce ≥ 0.8 with the trigger, ≤ 0.2 without). */
export const QUICKSTART_VIDEO = { steps: 300, batchSize: 2, learningRate: 1e-3, rank: 8, switchEvery: 25, samplerSteps: 20, cfg: 5, frames: 9 };

/**
 * The video quickstart: the built-in tiny Wan 2.2 I2V learns a new motion — "bouncing" — from 16 clips,
 * as an I2V LoRA on its two experts (high noise on model, low noise on lowNoiseModel) trained in turn
 * every switchEvery steps, each with its own LoRA file (`…_high_noise` / `…_low_noise`), with Wan's
 * usual settings (shifted timesteps, flow Euler previews at CFG 5, 9-frame clips at 16 fps), previews starting
 * from an example first frame as an I2V LoRA is used.
 */
function quickstartVideo(): { api: ApiGraph; layout: Record<string, [number, number, number, number]> } {
  const q = QUICKSTART_VIDEO;
  const sampling = { prompts: QUICKSTART_VIDEO_PROMPTS.join('\n'), seed: 7, walkSeed: true, steps: q.samplerSteps, cfg: q.cfg, sampler: 'euler', numFrames: q.frames, fps: 16, startImage: QUICKSTART_VIDEO_START };
  const api: ApiGraph = {
    '1': { class_type: 'LoadModel', inputs: { checkpoint: 'builtin:tiny-wan', clipSkip: 1 }, _meta: { title: 'Load Model: high-noise expert' } },
    '12': { class_type: 'LoadModel', inputs: { checkpoint: 'builtin:tiny-wan-low-noise', clipSkip: 1 }, _meta: { title: 'Load Model: low-noise expert' } },
    '2': { class_type: 'Dataset', inputs: { folder: 'demo-video', triggerWord: 'bouncing', resolution: '64', bucketStep: 64, repeats: 1, numFrames: q.frames, videoModel: true }, _meta: { title: 'Dataset: bouncing clips' } },
    '3': { class_type: 'LoraTarget', inputs: { model: ['1', 0], networkType: 'LoRA', rank: q.rank, alpha: q.rank, targetPreset: 'attention_ff' }, _meta: { title: 'LoRA Target' } },
    '4': { class_type: 'Optimizer', inputs: { optimizer: 'AdamW', learningRate: q.learningRate, lrScheduler: 'constant', warmupSteps: 10 }, _meta: { title: 'Optimizer' } },
    // musubi-tuner's Wan recommendation: shifted timesteps (discrete_flow_shift 3).
    '5': { class_type: 'TimestepSchedule', inputs: { timestepType: 'shift', timestepBias: 'balanced', shift: 3 }, _meta: { title: 'Timestep Schedule' } },
    '6': { class_type: 'SamplerSettings', inputs: sampling, _meta: { title: 'Samples during training' } },
    '7': {
      class_type: 'Train',
      inputs: {
        model: ['1', 0], lowNoiseModel: ['12', 0], clip: ['1', 1], vae: ['1', 2], datasets: [['2', 0]], adapter: ['3', 0], optimizer: ['4', 0], schedule: ['5', 0], samplerSettings: ['6', 0],
        steps: q.steps, batchSize: q.batchSize, seed: 1, sampleEvery: 100, saveEvery: 100, saveName: 'bouncing', cacheLatents: true, cacheTextEmbeddings: true,
        trainStages: 'both', switchEvery: q.switchEvery, boundary: 0,
      },
      _meta: { title: 'Train: both experts, switching every 25 steps' },
    },
    '8': { class_type: 'Sampler', inputs: { model: ['1', 0], lowNoiseModel: ['12', 0], clip: ['1', 1], vae: ['1', 2], training: ['7', 0], ...sampling, compare: true }, _meta: { title: 'Sampler: bouncing and a leak test, from bounce-start.png' } },
    '10': { class_type: 'SaveLora', inputs: { training: ['7', 0], name: 'bouncing', fileName: '{name}', format: 'ai-toolkit', dtype: 'fp16' }, _meta: { title: 'Save LoRA' } },
    '11': { class_type: 'LossGraph', inputs: { lossHistory: ['7', 1] }, _meta: { title: 'Loss' } },
  };
  const columns: [number, [string, number][]][] = [
    [272, [['1', SIZE.loadModel], ['12', SIZE.loadModel], ['2', SIZE.dataset]]],
    [256, [['3', SIZE.loraTarget], ['4', SIZE.optimizer]]],
    [272, [['6', SIZE.samplerSettings], ['5', SIZE.timesteps]]],
    [404, [['7', SIZE.train]]],
    [300, [['8', SIZE.sampler]]],
    [272, [['10', SIZE.saveLora], ['11', SIZE.loss]]],
  ];
  return { api, layout: columnLayout(columns) };
}

/** The example workflows by file name, for a registry (the node schemas decide widget order). */
export function exampleGraphs(registry: NodeRegistry): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const builders: [string, () => ReturnType<typeof quickstart>][] = [
    ['quickstart.json', () => quickstart(false)], ['quickstart-dop.json', () => quickstart(true)], ['quickstart-flux.json', quickstartFlux], ['quickstart-video.json', quickstartVideo],
  ];
  for (const [file, build] of builders) {
    const { api, layout } = build();
    const wf = apiToWorkflow(api, registry);
    for (const n of wf.nodes) {
      const l = layout[String(n.id)];
      if (l) { n.pos = [l[0], l[1]]; n.size = [l[2], l[3]]; }
    }
    out[file] = wf;
  }
  return out;
}

// Run as a script (not imported by the test that checks the committed files).
if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  // File names as arguments write only those graphs (`npx tsx scripts/build-graphs.ts quickstart-flux.json`).
  const only = process.argv.slice(2);
  const registry = await loadRegistry();
  for (const [file, wf] of Object.entries(exampleGraphs(registry)).filter(([f]) => only.length === 0 || only.includes(f))) {
    writeFileSync(join(repoRoot, 'graphs', file), JSON.stringify(wf, null, 2) + '\n');
    console.log(`graphs/${file} written`);
  }
}

// `loragraph export <graph> --format ai-toolkit`: a training graph → an ai-toolkit job YAML (job: extension,
// one sd_trainer process) that ai-toolkit's loader reads. Only graphs that fit ai-toolkit's model export: one
// Train node fed by Load Model (optionally through Quantize), Dataset nodes, LoRA Target, Optimizer and the
// optional Timestep Schedule / DOP / Sampler Settings. Widgets ai-toolkit has no key for are listed, not lost
// silently. The keys written are the ones ai-toolkit.ts imports, so import → export → import gives the same graph.
import { stringify } from 'yaml';
import type { NodeRegistry } from '../../nodes/registry';
import type { ApiGraph } from '../protocol';
import { validateGraph, type ValidNode } from '../validate';
import { AI_TOOLKIT_OPTIMIZERS, lowNoiseCheckpoint } from './ai-toolkit';
import { aiToolkitArchOf } from './families';
import type { DetectedArch } from './export-arch';

export class ExportError extends Error {}

export interface ExportResult {
  yaml: string;
  /** Settings of the graph that ai-toolkit has no key for (node.widget = value: why). */
  notExported: string[];
}

const SAVE_DTYPE: Record<string, string> = { fp16: 'float16', bf16: 'bfloat16', fp32: 'float32' };
const SAMPLER: Record<string, string> = { euler: 'euler', euler_ancestral: 'euler_a', ddim: 'ddim', dpmpp_2m: 'dpmsolver++' };
const BIAS: Record<string, string> = { balanced: 'balanced', high_noise: 'content', low_noise: 'style' };
const LOSS: Record<string, string> = { mse: 'mse', l1: 'mae', pseudo_huber: 'pseudo_huber' };
const QTYPE: Record<string, string> = { int8: 'qint8', nf4: 'nf4', int4: 'qint4', fp8: 'qfloat8' };
/** ai-toolkit's name for each optimizer: the first exact (un-noted) entry of the import table. */
const OPTIMIZER_NAME: Record<string, string> = {};
for (const [k, [name, note]] of Object.entries(AI_TOOLKIT_OPTIMIZERS)) if (!note) OPTIMIZER_NAME[name] ??= k;

/**
 * `arch` is ai-toolkit's model.arch for the checkpoint: given (CLI --arch), else the FLUX.2 release read
 * from the graph's files (`detected`, flux2ArchOfGraph: klein 4B, 9B or dev) when the family widget is
 * flux2 or auto, else Load Model's family widget when it names one, else sd1.
 */
export function exportAiToolkit(api: ApiGraph, registry: NodeRegistry, opts: { name?: string; arch?: string; detected?: DetectedArch } = {}): ExportResult {
  const v = validateGraph(api, registry);
  if (!v.ok) {
    const first = Object.entries(v.nodeErrors)[0];
    throw new ExportError(`the graph is not valid: ${first ? `node ${first[0]} (${first[1].type}) ${first[1].errors[0]?.field ?? ''}: ${first[1].errors[0]?.message}` : v.error.message}`);
  }
  const nodes = v.graph.nodes;
  const trains = [...nodes.values()].filter((n) => n.def.type === 'Train');
  if (trains.length !== 1) throw new ExportError(`ai-toolkit runs one training; this graph has ${trains.length} Train nodes${trains.length > 1 ? ' (chained Train nodes do not export)' : ''}`);
  const train = trains[0]!;
  const linked = (n: ValidNode, input: string): ValidNode | undefined => {
    const l = n.links[input];
    return l && !Array.isArray(l) ? nodes.get(l.node) : undefined;
  };
  const expect = (n: ValidNode | undefined, type: string, what: string): ValidNode => {
    if (!n || n.def.type !== type) throw new ExportError(`Train's ${what} must come from a ${type} node for ai-toolkit (it comes from ${n ? n.def.type : 'nothing'})`);
    return n;
  };
  const notExported: string[] = [];
  const note = (n: ValidNode, widget: string, def: unknown, why: string) => {
    if (JSON.stringify(n.widgets[widget]) !== JSON.stringify(def)) notExported.push(`${n.title}.${widget} = ${JSON.stringify(n.widgets[widget])}: ${why}`);
  };

  let modelNode = linked(train, 'model');
  const quantize = modelNode?.def.type === 'Quantize' ? modelNode : undefined;
  if (quantize) modelNode = linked(quantize, 'model');
  const load = expect(modelNode, 'LoadModel', 'model');
  // Two experts (Wan 2.2 14B): ai-toolkit loads the low-noise one itself, beside the high-noise one.
  let lowNode = linked(train, 'lowNoiseModel');
  if (lowNode?.def.type === 'Quantize') lowNode = linked(lowNode, 'model');
  const lowLoad = train.links.lowNoiseModel ? expect(lowNode, 'LoadModel', 'lowNoiseModel') : undefined;
  const target = expect(linked(train, 'adapter'), 'LoraTarget', 'adapter');
  const optimizer = expect(linked(train, 'optimizer'), 'Optimizer', 'optimizer');
  const schedule = linked(train, 'schedule');
  const dop = linked(train, 'regularizer');
  const sampler = linked(train, 'samplerSettings');
  const datasetLinks = train.links.datasets;
  const datasets = (Array.isArray(datasetLinks) ? datasetLinks : datasetLinks ? [datasetLinks] : []).map((l) => expect(nodes.get(l.node), 'Dataset', 'datasets'));
  const save = [...nodes.values()].find((n) => n.def.type === 'SaveLora' && (n.links.training as { node: string } | undefined)?.node === train.id);
  if (dop && dop.links.regularization) throw new ExportError('DOP with a regularization dataset input does not export: ai-toolkit\'s DOP uses the class word');
  const w = (n: ValidNode) => n.widgets as Record<string, any>;

  const name = opts.name ?? (save ? w(save).name : w(train).saveName) ?? 'my-lora';
  // network
  const t = w(target);
  const network: Record<string, unknown> = { type: t.networkType.toLowerCase(), linear: t.rank, linear_alpha: t.alpha };
  if (t.networkType !== 'LoRA') Object.assign(network, { conv: t.convRank, conv_alpha: t.convAlpha });
  if (t.dropout > 0) network.dropout = t.dropout;
  if (t.networkType === 'LoKr') Object.assign(network, { lokr_factor: t.lokrFactor, lokr_full_rank: t.lokrFullMatrix });
  if (t.include.trim() || t.exclude.trim()) {
    const subs = (text: string) => text.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => l.replace(/^\*|\*$/g, ''));
    network.network_kwargs = { ...(t.include.trim() ? { only_if_contains: subs(t.include) } : {}), ...(t.exclude.trim() ? { ignore_if_contains: subs(t.exclude) } : {}) };
  }
  note(target, 'targetPreset', 'all_linear', 'ai-toolkit targets every linear layer of the denoiser');

  // datasets: neighbours equal but for the resolution merge into one entry with a resolution list, as ai-toolkit splits them
  const entries: { widgets: Record<string, any>; sizes: number[] }[] = [];
  for (const d of datasets) {
    const dw = w(d);
    const sizes = dw.resolution.split(/[\s,;]+/).filter(Boolean).map(Number);
    if (sizes.length > 1) notExported.push(`${d.title}.resolution = "${dw.resolution}": Dataset puts each image at the closest size; ai-toolkit's list trains every image at every size (exported as the list)`);
    const prev = entries.at(-1);
    const same = prev && JSON.stringify({ ...prev.widgets, resolution: '' }) === JSON.stringify({ ...dw, resolution: '' });
    if (same && sizes.length === 1) prev.sizes.push(sizes[0]!);
    else entries.push({ widgets: dw, sizes });
    note(d, 'weight', 1, 'ai-toolkit mixes datasets by their size');
    note(d, 'separator', ',', 'ai-toolkit splits tags at commas');
  }
  const datasetYaml = entries.map(({ widgets: d, sizes }) => ({
    folder_path: d.folder,
    caption_ext: String(d.captionExtension).replace(/^\./, ''),
    ...(d.defaultCaption ? { default_caption: d.defaultCaption } : {}),
    ...(d.triggerWord ? { trigger_word: d.triggerWord } : {}),
    caption_dropout_rate: d.captionDropoutRate,
    ...(d.tokenDropoutRate ? { token_dropout_rate: d.tokenDropoutRate } : {}),
    shuffle_tokens: d.shuffleTags,
    ...(d.keepTokens ? { keep_tokens: d.keepTokens } : {}),
    num_repeats: d.repeats,
    flip_x: d.flipX,
    flip_y: d.flipY,
    ...(d.isRegularization ? { is_reg: true } : {}),
    ...(d.numFrames !== 1 ? { num_frames: d.numFrames } : {}),
    ...(d.imageToVideo === false ? { do_i2v: false } : {}),
    bucket_tolerance: d.bucketStep,
    resolution: sizes.length === 1 ? sizes[0] : sizes,
  }));

  const o = w(optimizer);
  const trainW = w(train);
  const trainYaml: Record<string, unknown> = {
    batch_size: trainW.batchSize,
    steps: trainW.steps,
    gradient_accumulation: trainW.gradientAccumulation,
    train_unet: true,
    train_text_encoder: t.trainTextEncoder,
    gradient_checkpointing: true,
    optimizer: OPTIMIZER_NAME[o.optimizer] ?? o.optimizer.toLowerCase(),
    lr: o.learningRate,
    ...(o.textEncoderLr ? { text_encoder_lr: o.textEncoderLr } : {}),
    optimizer_params: { weight_decay: o.weightDecay, betas: [o.beta1, o.beta2], eps: o.eps, ...(o.optimizer === 'Adafactor' ? { relative_step: o.relativeStep } : {}) },
    lr_scheduler: o.lrScheduler,
    // ai-toolkit passes lr_scheduler_params to torch's scheduler: only constant_with_warmup takes a warmup.
    ...(o.lrScheduler === 'constant_with_warmup' ? { lr_scheduler_params: { num_warmup_steps: o.warmupSteps } } : {}),
    max_grad_norm: o.maxGradNorm,
    ...(trainW.minSnrGamma ? { min_snr_gamma: trainW.minSnrGamma } : {}),
    noise_offset: trainW.noiseOffset,
    loss_type: LOSS[trainW.lossType] ?? (notExported.push(`${train.title}.lossType = ${trainW.lossType}: ai-toolkit has mse, mae, pseudo_huber`), 'mse'),
    ema_config: { use_ema: trainW.ema, ema_decay: trainW.emaDecay },
    cache_text_embeddings: trainW.cacheTextEmbeddings,
    reg_weight: trainW.priorLossWeight,
    dtype: 'bf16',
  };
  note(optimizer, 'nesterov', false, 'ai-toolkit\'s SGD has no Nesterov switch');
  if (o.lrScheduler !== 'constant_with_warmup') note(optimizer, 'warmupSteps', 0, `ai-toolkit's ${o.lrScheduler} scheduler has no warmup`);
  // The repeats and epochs count steps from the dataset folders, which an export does not read.
  note(train, 'stepsFrom', 'steps', `ai-toolkit takes a step count: exported Train.steps (${trainW.steps}); set it to the steps the Train node shows for the ${trainW.stepsFrom}`);
  if (o.lrScheduler === 'cosine_with_restarts') note(optimizer, 'numCycles', 1, 'ai-toolkit runs one cosine wave over the steps');
  if (o.lrScheduler === 'linear') notExported.push(`${optimizer.title}.lrScheduler = linear: ai-toolkit's linear ramps the lr up (torch LinearLR); exported as linear`);
  note(train, 'seed', 42, 'ai-toolkit draws its own seed');
  note(train, 'cacheLatents', true, 'ai-toolkit caches per dataset (cache_latents_to_disk)');
  note(load, 'clipSkip', 1, 'ai-toolkit has no clip skip');
  if (schedule) {
    const s = w(schedule);
    Object.assign(trainYaml, {
      timestep_type: s.timestepType,
      content_or_style: BIAS[s.timestepBias],
      min_denoising_steps: s.minTimestep,
      max_denoising_steps: s.maxTimestep - 1,
      ...(s.multistageBoundaries.trim() && !lowLoad ? { switch_boundary_every: s.switchEvery } : {}),
    });
    note(schedule, 'shift', 3, 'ai-toolkit\'s shift comes from the model');
    note(schedule, 'sigmoidScale', 1, 'ai-toolkit\'s sigmoid has a fixed scale');
  } else {
    notExported.push('Train has no Timestep Schedule (uniform timesteps): exported as timestep_type: linear');
    trainYaml.timestep_type = 'linear';
  }
  if (dop) {
    const d = w(dop);
    Object.assign(trainYaml, {
      diff_output_preservation: d.lossMultiplier > 0,
      ...(d.lossMultiplier > 0 ? { diff_output_preservation_multiplier: d.lossMultiplier, diff_output_preservation_class: d.preservationClass } : {}),
      ...(d.blankPromptPreservation ? { blank_prompt_preservation: true } : {}),
      ...(d.differentialGuidance ? { do_differential_guidance: true, differential_guidance_scale: d.differentialGuidanceScale } : {}),
    });
  }

  const family = load.widgets.family;
  const chosen = typeof family === 'string' && family !== 'auto' ? aiToolkitArchOf(family) : undefined;
  const detected = family === 'flux2' || family === 'auto' ? opts.detected : undefined;
  const modelYaml: Record<string, unknown> = { name_or_path: load.widgets.checkpoint, arch: opts.arch ?? detected?.arch ?? chosen ?? 'sd1' };
  if (!opts.arch && !detected && family === 'flux2') notExported.push(`${load.title}.family = flux2: no readable FLUX.2 checkpoint or LoRA file tells the release, exported as arch flux2_klein_9b (for klein 4B pass --arch flux2_klein_4b, for FLUX.2 [dev] --arch flux2)`);
  if (load.widgets.checkpoint === 'builtin:tiny') notExported.push(`${load.title}.checkpoint = builtin:tiny: loragraph's own tiny model; point name_or_path at an SD 1.5 checkpoint`);
  if (lowLoad) {
    trainYaml.switch_boundary_every = trainW.switchEvery;
    modelYaml.model_kwargs = { train_high_noise: trainW.trainStages !== 'low_noise', train_low_noise: trainW.trainStages !== 'high_noise' };
    note(train, 'boundary', 0, 'ai-toolkit uses the official boundary (0.875 text-to-video, 0.9 image-to-video)');
    const expected = lowNoiseCheckpoint(String(load.widgets.checkpoint)).widgets;
    if (Object.entries(expected).some(([k, v]) => lowLoad.widgets[k] !== v)) notExported.push(`${lowLoad.title}.checkpoint = ${JSON.stringify(lowLoad.widgets.checkpoint)}: ai-toolkit finds the low-noise expert beside name_or_path (${expected.checkpoint})`);
  }
  if (quantize) {
    const q = w(quantize);
    if (q.unet !== 'none') Object.assign(modelYaml, { quantize: true, qtype: QTYPE[q.unet] });
    Object.assign(modelYaml, { quantize_te: q.textEncoder !== 'none', ...(q.textEncoder !== 'none' ? { qtype_te: QTYPE[q.textEncoder] } : {}) });
  }

  const process: Record<string, unknown> = {
    type: 'sd_trainer',
    training_folder: 'output',
    device: 'cuda:0',
    network,
    save: { dtype: SAVE_DTYPE[save ? w(save).dtype : 'fp16'], save_every: trainW.saveEvery || trainW.steps, max_step_saves_to_keep: trainW.maxSavesToKeep },
    datasets: datasetYaml,
    train: trainYaml,
    model: modelYaml,
  };
  if (sampler) {
    const s = w(sampler);
    process.sample = {
      sampler: SAMPLER[s.sampler],
      sample_every: trainW.sampleEvery || trainW.steps,
      width: s.width || 512,
      height: s.height || 512,
      prompts: String(s.prompts).split('\n').map((p) => p.trim()).filter(Boolean),
      neg: s.negativePrompt,
      seed: s.seed,
      walk_seed: s.walkSeed,
      guidance_scale: s.cfg,
      sample_steps: s.steps,
      network_multiplier: s.loraStrength,
      // Clips: 0 frames is loragraph's "the model's own length", which ai-toolkit has no word for.
      ...(s.numFrames ? { num_frames: s.numFrames } : {}),
      fps: s.fps,
    };
    note(sampler, 'scheduler', 'auto', 'ai-toolkit\'s sampler decides its own step spacing');
  } else {
    (process.train as Record<string, unknown>).disable_sampling = true;
  }
  const job = { job: 'extension', config: { name, process: [process] }, meta: { name: '[name]', version: '1.0' } };
  const header = `# ai-toolkit job exported by loragraph. Run it with: python run.py <this file>\n${notExported.length ? `# not exported:\n${notExported.map((n) => `#   ${n}`).join('\n')}\n` : ''}`;
  return { yaml: header + stringify(job, { lineWidth: 0 }), notExported };
}

// sdxlFamily through the ModelFamily contract on a tiny SDXL checkpoint with real key names: it loads
// with both tokenizers, encodes text (pooled at the first EOS), maps a sample's geometry to the six
// size numbers, and a LoRA on the UNet's attention (kohya SDXL names) trains: the loss falls over a
// few AdamW steps on CPU.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Builder, compileGraph, input, Runtime, TrainStep, adamw, cast, type HostTensor, type Tensor } from '../../../kernels';
import { AdapterSet, type LoraNamer } from '../../../kernels/adapters';
import { ddpmSchedule } from '../../../kernels/schedules/ddpm';
import { batchLoss, ddpmTrainingPair, perSampleLoss } from '../../../kernels/losses';
import { Rng } from '../../../kernels/random';
import { sdxlFamily, firstEosIndex, tinySdxlConfig, saveSdxlSingleFile, sdxlKohyaName, bigGText, SDXL_BASE, type SdxlConfig } from '../../../kernels/sdxl';
import { ClipTokenizer } from '../../../kernels/sd/tokenizer';
import type { LoadedFamilyModel } from '../../../kernels/families/contract';

const TINY_TOKENIZER = new URL('../../../assets/tiny/tokenizer', import.meta.url).pathname;
const cfg = tinySdxlConfig();
const rt = new Runtime({ threads: 1 });
let dir: string;
let model: LoadedFamilyModel<SdxlConfig>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sdxl-family-'));
  const file = join(dir, 'tiny-sdxl.safetensors');
  let s = 7;
  await saveSdxlSingleFile(file, cfg, (_c, name, shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    if (/norm.*\.weight$/.test(name)) return new Float32Array(n).fill(1);
    return Float32Array.from({ length: n }, () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return (s / 2 ** 32 - 0.5) * 0.2; });
  });
  model = await sdxlFamily.load(file, { fallbackTokenizerDirs: [TINY_TOKENIZER] });
});
afterAll(async () => { model?.close(); await rm(dir, { recursive: true, force: true }); await rt.close(); });

describe('sdxlFamily', () => {
  it('names itself as kohya does and lists its parts, encoders and conditioning', () => {
    expect(sdxlFamily.id).toBe('sdxl');
    expect(sdxlFamily.baseModelVersion).toBe('sdxl_base_v1-0');
    expect(`${sdxlFamily.modelspecArchitecture}/lora`).toBe('stable-diffusion-xl-v1-base/lora');
    expect(sdxlFamily.parts(cfg).map((p) => p.id)).toEqual(['unet', 'text_encoder', 'text_encoder_2', 'vae']);
    expect(sdxlFamily.conditioning(SDXL_BASE)).toEqual([
      { name: 'context', shape: [77, 2048], source: 'text' },
      { name: 'pooled', shape: [1280], source: 'text' },
      { name: 'time_ids', shape: [6], source: 'sample' },
    ]);
    expect(sdxlFamily.latentFormat(SDXL_BASE)).toMatchObject({ channels: 4, spatialCompression: 8, scale: 0.13025 });
    const unetLora = sdxlFamily.loraComponents(SDXL_BASE)[0];
    expect(unetLora.modulePath!.kohya!('down_blocks.2.attentions.1.transformer_blocks.9.attn2.to_k')).toBe('input_blocks.8.1.transformer_blocks.9.attn2.to_k');
    expect(sdxlFamily.loraComponents(SDXL_BASE).map((c) => c.kohyaPrefix)).toEqual(['lora_unet', 'lora_te1', 'lora_te2']);
  });

  it('a sample\'s geometry becomes the six size numbers in kohya order', () => {
    const v = sdxlFamily.sampleConditioning(cfg, { originalSize: { width: 800, height: 1200 }, cropTopLeft: { top: 16, left: 8 }, targetSize: { width: 768, height: 1152 } });
    expect([...v.time_ids]).toEqual([1200, 800, 16, 8, 1152, 768]);
  });

  it('loads with a tokenizer per tower (bigG pads with "!" after the EOS) and counts parameters', () => {
    expect(model.textEncoders.map((t) => t.part)).toEqual(['text_encoder', 'text_encoder_2']);
    const l = Array.from(model.textEncoders[0].tokenizer.tokenize('a red circle', { maxLength: 77 }).ids);
    const g = Array.from(model.textEncoders[1].tokenizer.tokenize('a red circle', { maxLength: 77 }).ids);
    const eos = (model.textEncoders[0].tokenizer as ClipTokenizer).eosId;
    expect(eos).toBe(cfg.textG.vocabSize - 1);
    const at = l.indexOf(eos);
    expect(g.indexOf(eos)).toBe(at);
    expect(l[at + 1]).toBe(eos);
    expect(g[at + 1]).not.toBe(eos);
    expect(model.params.unet).toBeGreaterThan(0);
    expect(Object.keys(model.params).sort()).toEqual(['text_encoder', 'text_encoder_2', 'unet', 'vae']);
  });

  it('the first EOS is found in the graph; encodeText pools there', async () => {
    const ids = input('ids', [2, 6], 'int64');
    const s = await rt.load(compileGraph([ids], { eos: firstEosIndex(ids, 9) }));
    const out = await s.run({ ids: { dtype: 'int64', shape: [2, 6], data: BigInt64Array.from([8, 1, 9, 9, 9, 9, 8, 2, 3, 4, 5, 6].map(BigInt)) } });
    expect([...(out.eos.data as BigInt64Array)]).toEqual([2n, 5n]);

    const tokL = model.textEncoders[0].tokenizer, tokG = model.textEncoders[1].tokenizer;
    const prompts = ['a red circle on a blue background', 'sks star'];
    const feed = (tok: typeof tokL): HostTensor => ({ dtype: 'int64', shape: [2, 77], data: BigInt64Array.from(prompts.flatMap((p) => Array.from(tok.tokenize(p, { maxLength: 77 }).ids, BigInt))) });
    const idsL = input('idsL', [2, 77], 'int64'), idsG = input('idsG', [2, 77], 'int64'), eosAt = input('eosAt', [2], 'int64');
    const cond = sdxlFamily.encodeText([new Builder(model.textEncoders[0].weights), new Builder(model.textEncoders[1].weights)], cfg, [idsL, idsG], { clipSkip: 1 });
    const direct = bigGText(new Builder(model.textEncoders[1].weights), cfg.textG, idsG, eosAt).pooled;
    const r = await (await rt.load(compileGraph([idsL, idsG, eosAt], { context: cond.context, pooled: cond.pooled, direct }))).run({
      idsL: feed(tokL), idsG: feed(tokG),
      eosAt: { dtype: 'int64', shape: [2], data: BigInt64Array.from(prompts.map((p) => BigInt(Array.from(tokG.tokenize(p, { maxLength: 77 }).ids).indexOf(cfg.textG.vocabSize - 1)))) },
    });
    expect(r.context.shape).toEqual([2, 77, cfg.unet.crossAttentionDim]);
    expect([...(r.pooled.data as Float32Array)]).toEqual([...(r.direct.data as Float32Array)]);
  });

  it('a LoRA on the UNet attention (kohya SDXL names) trains: the loss falls', async () => {
    const namer: LoraNamer = (p) => sdxlKohyaName('unet', p, cfg.unet);
    const adapters = new AdapterSet({ rank: 4, alpha: 4, targets: { preset: 'attention' }, namer });
    const B = 2, h = 8;
    const x0 = input('latents', [B, 4, h, h]), noise = input('noise', [B, 4, h, h]), t = input('timesteps', [B], 'int64');
    const context = input('context', [B, 77, cfg.unet.crossAttentionDim]), pooled = input('pooled', [B, cfg.textG.projectionDim]), timeIds = input('time_ids', [B, 6]);
    const schedule = ddpmSchedule({ betaStart: cfg.scheduler.betaStart, betaEnd: cfg.scheduler.betaEnd, numTrainTimesteps: 1000, betaSchedule: cfg.scheduler.betaSchedule });
    const { noisy, target } = ddpmTrainingPair(x0, noise, t, schedule, 'epsilon');
    const pred = sdxlFamily.denoise(new Builder(model.denoiser, adapters.hook({ training: true })), cfg, { sample: noisy, timestep: cast(t, 'float32'), cond: { context, pooled, time_ids: timeIds } });
    const loss = batchLoss(perSampleLoss(pred, target));
    const names = Object.keys(adapters.params);
    expect(names.length).toBeGreaterThan(0);
    expect(names.every((n) => /^lora_unet_(input_blocks_[0-9]+_1|middle_block_1|output_blocks_[0-9]+_1)_transformer_blocks_\d+_attn[12]_to_(q|k|v|out_0)\.(lora_down|lora_up)\.weight$/.test(n)), names.find((n) => !/^lora_unet_/.test(n))).toBe(true);
    expect(names).toContain('lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight');
    const ts = await TrainStep.create(rt, { inputs: [x0, noise, t, context, pooled, timeIds], params: adapters.params, loss, optimizer: adamw(), maxGradNorm: 1 });
    await ts.init(adapters.initialValues(new Rng('sdxl-lora')));
    const rng = new Rng('sdxl-batch');
    const normal = (shape: number[]): HostTensor => ({ dtype: 'float32', shape, data: rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1))) });
    const feeds: Record<string, HostTensor> = {
      latents: normal([B, 4, h, h]), noise: normal([B, 4, h, h]),
      timesteps: { dtype: 'int64', shape: [B], data: new BigInt64Array([300n, 700n]) },
      context: normal([B, 77, cfg.unet.crossAttentionDim]), pooled: normal([B, cfg.textG.projectionDim]),
      time_ids: { dtype: 'float32', shape: [B, 6], data: new Float32Array([64, 64, 0, 0, 64, 64, 80, 64, 8, 0, 64, 64]) },
    };
    const losses: number[] = [];
    for (let i = 1; i <= 12; i++) losses.push((await ts.step([feeds], 3e-3, i)).loss);
    expect(losses.every(Number.isFinite)).toBe(true);
    // One fixed batch: AdamW on the adapter alone must bring the loss steadily down.
    expect(losses.at(-1)!).toBeLessThan(losses[0] * 0.95);
    expect(losses.slice(1).filter((l, i) => l < losses[i]).length).toBeGreaterThanOrEqual(10);
    await ts.dispose();
  });
});

// ai-toolkit's Wan 2.2 14B jobs import as a two-expert graph: a second Load Model (and Quantize) for the
// low-noise expert — diffusers' transformer_2/ beside name_or_path, or ComfyUI's file with high_noise →
// low_noise — connected to Train's lowNoiseModel; train_high_noise / train_low_noise → Train.trainStages,
// switch_boundary_every → Train.switchEvery; sample num_frames / fps → the Sampler Settings; and the export
// writes them back so import → export → import gives the same graph.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadRegistry, type NodeRegistry } from '../../nodes/registry';
import { exportAiToolkit } from '../../server/import/export-ai-toolkit';
import { importConfigText, type ImportResult } from '../../server/import/index';
import { applyOverrides } from '../../server/graph/set';
import { projectPaths, repoRoot } from '../../server/paths';
import type { ApiGraph } from '../../server/protocol';
import { validateGraph } from '../../server/validate';

const REAL = join(repoRoot, '..', 'shared', 'fixtures', 'configs', 'train_lora_wan22_14b_24gb.yaml');
/** ai-toolkit's own Wan 2.2 14B example when the shared fixtures are there, else a job with the same keys. */
const WAN22 = existsSync(REAL) ? readFileSync(REAL, 'utf8') : `job: extension
config:
  name: "my_first_wan22_14b_lora_v1"
  process:
    - type: 'sd_trainer'
      network: { type: "lora", linear: 32, linear_alpha: 32 }
      save: { dtype: float16, save_every: 250, max_step_saves_to_keep: 4 }
      datasets:
        - folder_path: "/path/to/images/or/video/folder"
          num_frames: 1
          resolution: [ 512, 768, 1024]
      train:
        steps: 2000
        lr: 1e-4
        switch_boundary_every: 10
      model:
        name_or_path: "ai-toolkit/Wan2.2-T2V-A14B-Diffusers-bf16"
        arch: 'wan22_14b'
        quantize: true
        qtype: "uint4|ostris/accuracy_recovery_adapters/wan22_14b_t2i_torchao_uint4.safetensors"
        model_kwargs:
          train_high_noise: true
          train_low_noise: true
      sample:
        sampler: "flowmatch"
        num_frames: 1
        fps: 16
        prompts:
          - "a bear building a log cabin in the snow covered mountains"
`;

let registry: NodeRegistry;
beforeAll(async () => { registry = await loadRegistry(); });

const titleOf = (api: ApiGraph, id: string) => api[id]!._meta?.title ?? registry.get(api[id]!.class_type)!.title;
const idOf = (r: ImportResult, title: string) => Object.keys(r.api).find((id) => titleOf(r.api, id) === title)!;
const byTitle = (r: ImportResult, title: string) => r.api[idOf(r, title)]!.inputs;
const entry = (r: ImportResult, key: string) => r.report.entries.find((e) => e.key === key)!;
const withFolders = (r: ImportResult) => applyOverrides(r.api, registry, Object.entries(r.api).filter(([, n]) => n.class_type === 'Dataset' && !n.inputs.folder).map(([id]) => ({ node: id, widget: 'folder', value: 'clips' })));
function normalized(api: ApiGraph) {
  const v = validateGraph(api, registry);
  if (!v.ok) throw new Error(JSON.stringify(v.nodeErrors));
  return [...v.graph.nodes.values()].map((n) => [n.id, n.def.type, n.title, n.widgets, n.links]);
}

describe('ai-toolkit Wan 2.2 14B import', () => {
  it('two Load Models (the low-noise one from diffusers\' transformer_2/), quantised alike, the second into Train.lowNoiseModel; switch_boundary_every and both experts on Train', async () => {
    const r = await importConfigText('wan22.yaml', WAN22, registry);
    expect(byTitle(r, 'Load Model')).toMatchObject({ checkpoint: 'ai-toolkit/Wan2.2-T2V-A14B-Diffusers-bf16', family: 'wan' });
    expect(byTitle(r, 'Load Model (low noise)')).toMatchObject({
      checkpoint: 'ai-toolkit/Wan2.2-T2V-A14B-Diffusers-bf16/transformer_2', textEncoder: 'ai-toolkit/Wan2.2-T2V-A14B-Diffusers-bf16/text_encoder',
      vae: 'ai-toolkit/Wan2.2-T2V-A14B-Diffusers-bf16/vae', family: 'wan',
    });
    expect(byTitle(r, 'Quantize (low noise)')).toEqual({ ...byTitle(r, 'Quantize'), model: [idOf(r, 'Load Model (low noise)'), 0], clip: [idOf(r, 'Load Model (low noise)'), 1] });
    const train = byTitle(r, 'Train');
    expect(train).toMatchObject({ trainStages: 'both', switchEvery: 10, lowNoiseModel: [idOf(r, 'Quantize (low noise)'), 0], model: [idOf(r, 'Quantize'), 0] });
    // No Timestep Schedule multistage: the Train node picks the experts.
    expect(byTitle(r, 'Timestep Schedule').multistageBoundaries).toBeUndefined();
    expect(entry(r, 'config.process[0].train.switch_boundary_every')).toMatchObject({ status: 'mapped', targets: ['Train.switchEvery'] });
    expect(entry(r, 'config.process[0].model.model_kwargs.train_high_noise')).toMatchObject({ status: 'mapped', targets: ['Train.trainStages'] });
    expect(entry(r, 'config.process[0].model.name_or_path').targets).toEqual(['Load Model.checkpoint', 'Load Model (low noise).checkpoint', 'Load Model (low noise).textEncoder', 'Load Model (low noise).vae']);
    expect(byTitle(r, 'Sampler Settings')).toMatchObject({ numFrames: 1, fps: 16 });
    expect(r.report.notes.join('\n')).toMatch(/Load Model \(low noise\) feeds Train's lowNoiseModel/);
    expect(validateGraph(withFolders(r), registry).ok).toBe(true);
  });

  it('train_high_noise / train_low_noise pick the stages; both false is refused naming the keys', async () => {
    const only = (high: boolean, low: boolean) => importConfigText('w.yaml', WAN22.replace(/train_high_noise: true/, `train_high_noise: ${high}`).replace(/train_low_noise: true/, `train_low_noise: ${low}`), registry);
    expect(byTitle(await only(true, false), 'Train').trainStages).toBe('high_noise');
    expect(byTitle(await only(false, true), 'Train').trainStages).toBe('low_noise');
    const none = await only(false, false);
    expect(entry(none, 'config.process[0].model.model_kwargs.train_low_noise')).toMatchObject({ status: 'unsupported', note: expect.stringMatching(/train_high_noise and train_low_noise are both false/) });
  });

  it('ComfyUI\'s expert files: the low-noise Load Model opens the same name with low_noise; i2v and default switching', async () => {
    const text = WAN22.replace(/name_or_path: .*/, 'name_or_path: "/srv/lg/models/diffusion_models/wan2.2_i2v_high_noise_14B_fp16.safetensors"')
      .replace(/arch: .*/, "arch: 'wan22_14b_i2v'").replace(/\n\s*switch_boundary_every: 10/, '');
    const r = await importConfigText('i2v.yaml', text, registry, { paths: projectPaths('/srv/lg') });
    expect(byTitle(r, 'Load Model').checkpoint).toBe('diffusion_models/wan2.2_i2v_high_noise_14B_fp16.safetensors');
    expect(byTitle(r, 'Load Model (low noise)').checkpoint).toBe('diffusion_models/wan2.2_i2v_low_noise_14B_fp16.safetensors');
    expect(byTitle(r, 'Load Model (low noise)').textEncoder).toBeUndefined();
    // ai-toolkit's default switch_boundary_every is 1.
    expect(byTitle(r, 'Train').switchEvery).toBe(1);
  });

  it('other families keep one Load Model; their switch_boundary_every goes to the Timestep Schedule', async () => {
    const text = WAN22.replace(/arch: .*/, "arch: 'wan21'");
    const r = await importConfigText('w21.yaml', text, registry);
    expect(Object.values(r.api).filter((n) => n.class_type === 'LoadModel')).toHaveLength(1);
    expect(byTitle(r, 'Train').lowNoiseModel).toBeUndefined();
    expect(entry(r, 'config.process[0].train.switch_boundary_every').targets).toEqual(['Timestep Schedule.switchEvery']);
    expect(entry(r, 'config.process[0].model.model_kwargs.train_high_noise')).toMatchObject({ status: 'ignored', note: expect.stringMatching(/only Wan 2.2 14B/) });
  });

  it('export writes model_kwargs and switch_boundary_every back: import → export → import gives the same graph', async () => {
    const a = await importConfigText('wan22.yaml', WAN22.replace(/train_low_noise: true/, 'train_low_noise: false'), registry);
    const out = exportAiToolkit(a.api, registry, { arch: 'wan22_14b' });
    expect(out.yaml).toMatch(/switch_boundary_every: 10/);
    expect(out.yaml).toMatch(/model_kwargs:\n\s+train_high_noise: true\n\s+train_low_noise: false/);
    const b = await importConfigText('exported.yaml', out.yaml, registry);
    expect(normalized(withFolders(b))).toEqual(normalized(withFolders(a)));
    // A low-noise Load Model pointing elsewhere is listed as not exported.
    const moved = applyOverrides(a.api, registry, [{ node: idOf(a, 'Load Model (low noise)'), widget: 'checkpoint', value: 'elsewhere/low.safetensors' }]);
    expect(exportAiToolkit(moved, registry, { arch: 'wan22_14b' }).notExported.join('\n')).toMatch(/Load Model \(low noise\)\.checkpoint = "elsewhere\/low\.safetensors"/);
  });
});

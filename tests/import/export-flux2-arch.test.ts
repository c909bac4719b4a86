// `loragraph export` tells FLUX.2's releases apart from the files a graph names, as ComfyUI does from
// the base: a LoRA's own module widths and block indices (klein 4B 3072 wide with 20 single blocks,
// klein 9B 4096 with 24, dev 6144 with 48) in ai-toolkit, kohya and diffusers names, and a checkpoint's
// header (txt_in width, block counts, guidance embedder). ai-toolkit's arch: flux2_klein_4b,
// flux2_klein_9b, and flux2 for dev (its Flux2Model).
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdirSync, mkdtempSync, openSync, closeSync, writeSync, ftruncateSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { FLUX2_DEV, FLUX2_KLEIN_4B, FLUX2_KLEIN_9B, FLUX2_TINY, mlpHidden, type FluxTransformerConfig } from '../../kernels/flux/config';
import { flux2VariantOfLora, writeFluxLora, type FluxLoraFormat, type FluxLoraModule } from '../../kernels/flux/lora';
import { fluxTransformerShapes } from '../../kernels/flux/shapes';
import { writeSafetensors, DTYPE_BYTES, type TensorToWrite } from '../../kernels/io/safetensors';
import { loadRegistry, type NodeRegistry } from '../../nodes/registry';
import { exportAiToolkit } from '../../server/import/export-ai-toolkit';
import { flux2ArchOfGraph } from '../../server/import/export-arch';
import { importConfigText } from '../../server/import/index';
import { projectPaths } from '../../server/paths';
import { repoRoot } from '../../server/paths';
import type { ApiGraph } from '../../server/protocol';

/** A rank-1 LoRA on a double block's image qkv and on the last single block's linear2 of `cfg`. */
function loraModules(cfg: FluxTransformerConfig, lastSingle = cfg.depthSingle - 1): Map<string, FluxLoraModule> {
  const h = cfg.hiddenSize;
  const mod = (inF: number, outF: number): FluxLoraModule => ({ down: new Float32Array(inF).fill(0.01), up: new Float32Array(outF).fill(0.02), rank: 1, inFeatures: inF, outFeatures: outF, alpha: 1 });
  return new Map([['double_blocks.0.img_attn.qkv', mod(h, 3 * h)], [`single_blocks.${lastSingle}.linear2`, mod(h + mlpHidden(cfg), h)]]);
}

async function writeLora(file: string, cfg: FluxTransformerConfig, format: FluxLoraFormat, modules = loraModules(cfg)): Promise<Map<string, readonly number[]>> {
  const tensors = writeFluxLora(cfg, modules, format);
  mkdirSync(dirname(file), { recursive: true });
  await writeSafetensors(file, Object.fromEntries([...tensors].map(([k, t]): [string, TensorToWrite] => [k, { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }])));
  return new Map([...tensors].map(([k, t]) => [k, t.shape]));
}

/**
 * A BFL-named transformer file holding the tensors detection reads, at their real shapes, in fp8 as
 * ComfyUI ships FLUX.2 [dev]; the data is a sparse hole (headers are all an export reads).
 */
function writeHeaderOnlyTransformer(file: string, cfg: FluxTransformerConfig): void {
  const shapes = fluxTransformerShapes(cfg).tensors;
  const wanted = [...shapes.keys()].filter((k) => /^(img_in|txt_in|guidance_in\.in_layer|double_stream_modulation_img\.lin)\.weight$/.test(k)
    || k === `double_blocks.${cfg.depthDouble - 1}.img_attn.norm.query_norm.scale` || k === 'double_blocks.0.img_attn.norm.query_norm.scale'
    || k === `single_blocks.${cfg.depthSingle - 1}.norm.query_norm.scale`);
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const k of wanted) {
    const bytes = shapes.get(k)!.reduce((a, b) => a * b, 1) * DTYPE_BYTES.F8_E4M3;
    header[`model.diffusion_model.${k}`] = { dtype: 'F8_E4M3', shape: shapes.get(k), data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  mkdirSync(dirname(file), { recursive: true });
  const fd = openSync(file, 'w');
  try { writeSync(fd, len); writeSync(fd, json); ftruncateSync(fd, 8 + json.length + offset); } finally { closeSync(fd); }
}

describe('FLUX.2 release of a LoRA from its own names and shapes', () => {
  for (const cfg of [FLUX2_KLEIN_4B, FLUX2_KLEIN_9B, FLUX2_DEV]) {
    for (const format of ['ai-toolkit', 'kohya', 'diffusers'] as const) {
      it(`${cfg.name}, ${format} names`, () => {
        const tensors = writeFluxLora(cfg, loraModules(cfg), format);
        expect(flux2VariantOfLora([...tensors.keys()], (k) => tensors.get(k)?.shape)?.name).toBe(cfg.name);
      });
    }
  }

  it('block indices count as well as widths; a size no release has is none of them', () => {
    // klein 9B's widths with a 30th single block (it has 24): no release.
    const wide = { ...FLUX2_KLEIN_9B, depthSingle: 31 };
    const past = writeFluxLora(wide, loraModules(wide, 30), 'ai-toolkit');
    expect(flux2VariantOfLora([...past.keys()], (k) => past.get(k)?.shape)).toBeUndefined();
    const tiny = writeFluxLora(FLUX2_TINY, loraModules(FLUX2_TINY), 'kohya');
    expect(flux2VariantOfLora([...tiny.keys()], (k) => tiny.get(k)?.shape)).toBeUndefined();
  });
});

describe('loragraph export: the ai-toolkit arch of a FLUX.2 graph from its files', () => {
  let registry: NodeRegistry;
  let graph: () => Promise<ApiGraph>;
  beforeAll(async () => {
    registry = await loadRegistry();
    const text = readFileSync(join(repoRoot, 'tests', 'fixtures', 'configs', 'sd15_ai_toolkit.yaml'), 'utf8').replace('arch: "sd1"', 'arch: "flux2_klein_9b"');
    graph = async () => (await importConfigText('klein.yaml', text, registry, { env: { LORAGRAPH_TEST_DATA: '/srv/training' } })).api;
  }, 60_000);

  /** The graph with Train continuing from a Load LoRA of `loraFile`, and Load Model opening `checkpoint`. */
  async function continuing(checkpoint: string, loraFile: string): Promise<ApiGraph> {
    const api = await graph();
    const [loadId, load] = Object.entries(api).find(([, n]) => n.class_type === 'LoadModel')!;
    const train = Object.values(api).find((n) => n.class_type === 'Train')!;
    expect(load.inputs.family).toBe('flux2');
    load.inputs.checkpoint = checkpoint;
    api['900'] = { class_type: 'LoadLora', inputs: { model: [loadId, 0], loraFile } };
    train.inputs.training = ['900', 0];
    return api;
  }

  it('a dev LoRA the Train continues from exports arch flux2, klein 4B\'s flux2_klein_4b; without files the note asks for --arch', async () => {
    const paths = projectPaths(mkdtempSync(join(tmpdir(), 'lg-export-')));
    await writeLora(join(paths.models, 'loras', 'dev.safetensors'), FLUX2_DEV, 'diffusers');
    await writeLora(join(paths.models, 'loras', 'k4.safetensors'), FLUX2_KLEIN_4B, 'kohya');
    const dev = await continuing('diffusion_models/missing.safetensors', 'loras/dev.safetensors');
    const detected = await flux2ArchOfGraph(dev, paths);
    expect(detected).toMatchObject({ arch: 'flux2', from: expect.stringMatching(/^dev\.safetensors: a LoRA of FLUX\.2 \[dev\] \(width 6144, 8 double \+ 48 single blocks\)$/) });
    const out = exportAiToolkit(dev, registry, { detected });
    expect(out.yaml).toMatch(/\n +arch: flux2\n/);
    expect(out.notExported.join('\n')).not.toMatch(/family = flux2/);
    const k4 = await continuing('diffusion_models/missing.safetensors', 'loras/k4.safetensors');
    expect(exportAiToolkit(k4, registry, { detected: await flux2ArchOfGraph(k4, paths) }).yaml).toMatch(/arch: flux2_klein_4b\n/);
    // --arch still wins; nothing readable leaves klein 9B with the note.
    expect(exportAiToolkit(dev, registry, { arch: 'flux2_klein_9b', detected }).yaml).toMatch(/arch: flux2_klein_9b\n/);
    const none = await continuing('diffusion_models/missing.safetensors', 'loras/missing.safetensors');
    expect(await flux2ArchOfGraph(none, paths)).toBeUndefined();
    expect(exportAiToolkit(none, registry).notExported.join('\n')).toMatch(/family = flux2: no readable FLUX\.2 checkpoint or LoRA file tells the release, exported as arch flux2_klein_9b/);
  }, 60_000);

  it('the checkpoint\'s header wins over the LoRA: a dev transformer file exports flux2 even beside a klein LoRA', async () => {
    const paths = projectPaths(mkdtempSync(join(tmpdir(), 'lg-export-')));
    writeHeaderOnlyTransformer(join(paths.models, 'diffusion_models', 'flux2_dev_fp8.safetensors'), FLUX2_DEV);
    await writeLora(join(paths.models, 'loras', 'k9.safetensors'), FLUX2_KLEIN_9B, 'ai-toolkit');
    const api = await continuing('diffusion_models/flux2_dev_fp8.safetensors', 'loras/k9.safetensors');
    const detected = await flux2ArchOfGraph(api, paths);
    expect(detected).toMatchObject({ arch: 'flux2', from: 'flux2_dev_fp8.safetensors: FLUX.2 [dev] (width 6144, 8 double + 48 single blocks)' });
    expect(exportAiToolkit(api, registry, { detected }).yaml).toMatch(/arch: flux2\n/);
    writeHeaderOnlyTransformer(join(paths.models, 'diffusion_models', 'klein4b.safetensors'), FLUX2_KLEIN_4B);
    expect(await flux2ArchOfGraph(await continuing('diffusion_models/klein4b.safetensors', 'loras/k9.safetensors'), paths)).toMatchObject({ arch: 'flux2_klein_4b' });
  }, 60_000);
});

// Load Model for FLUX as ComfyUI users keep their files: the transformer, its text encoder and its VAE
// chosen separately on the node (found by themselves when they sit in ComfyUI's folders), and a family
// widget that loads a file as the family chosen, refuses a file that is clearly another, and tells
// `loragraph export` the ai-toolkit arch.
import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import loadModelNode from '../../nodes/load-model';
import type { ModelValue } from '../../nodes/sockets';
import { loadRegistry } from '../../nodes/registry';
import { exportAiToolkit } from '../../server/import/export-ai-toolkit';
import { importConfigFile, importConfigText } from '../../server/import/index';
import { readFileSync } from 'node:fs';
import { repoRoot } from '../../server/paths';
import { nodeContext } from './context';
import { writeTinyKlein } from './flux-tiny-model';
import { writeTinyCheckpoint } from './tiny-model';

const { ctx } = nodeContext(undefined, '3');
const run = (widgets: Record<string, unknown>) => loadModelNode.execute({ inputs: {}, widgets: loadModelNode.widgets.parse(widgets), ctx });

describe('Load Model: FLUX files chosen separately, and the family widget', () => {
  it('a text encoder and VAE outside ComfyUI\'s folders are not found by themselves, and load when chosen on the node', async () => {
    const files = await writeTinyKlein(ctx.paths.models, { checkpoint: 'mine/klein.safetensors', textEncoder: 'encoders/q3.safetensors', vae: 'autoencoders/ae.safetensors' });
    await expect(run({ checkpoint: files.checkpoint })).rejects.toThrow(/checkpoint: .*mine\/klein\.safetensors: no Qwen3 text encoder found beside it/);
    const r = await run({ checkpoint: files.checkpoint, textEncoder: files.textEncoder, vae: files.vae });
    const model = r.outputs.model as ModelValue;
    expect(model.family.id).toBe('flux2');
    expect((r.ui as { text: string[] }).text[1]).toMatch(/^transformer .*, text encoder .*, VAE .* parameters$/);
    // Another text encoder makes another model: the source id covers the chosen files.
    const again = await run({ checkpoint: files.checkpoint, textEncoder: files.textEncoder, vae: files.vae });
    expect((again.outputs.model as ModelValue).source.id).toBe(model.source.id);
    const other = await writeTinyKlein(ctx.paths.models, { checkpoint: 'mine2/klein.safetensors', textEncoder: 'encoders/q3b.safetensors', vae: 'autoencoders/ae2.safetensors' });
    const withOther = await run({ checkpoint: files.checkpoint, textEncoder: other.textEncoder, vae: files.vae });
    expect((withOther.outputs.model as ModelValue).source.id).not.toBe(model.source.id);
  }, 120_000);

  it('a text encoder that does not fit the transformer is refused naming the file', async () => {
    const files = await writeTinyKlein(ctx.paths.models, { checkpoint: 'mine3/klein.safetensors', textEncoder: 'encoders/q3c.safetensors', vae: 'autoencoders/ae3.safetensors' });
    await expect(run({ checkpoint: files.checkpoint, textEncoder: files.vae, vae: files.vae })).rejects.toThrow(/ae3\.safetensors: not a Qwen3 text encoder/);
  }, 60_000);

  it('family: the chosen family loads; a file that is clearly another family, and separate files for an SD checkpoint, are refused by name', async () => {
    const files = await writeTinyKlein(ctx.paths.models);
    expect(((await run({ checkpoint: files.checkpoint, family: 'flux2' })).outputs.model as ModelValue).family.id).toBe('flux2');
    await expect(run({ checkpoint: files.checkpoint, family: 'sdxl' })).rejects.toThrow(/^family: .*klein-tiny\.safetensors looks like FLUX\.2 \[klein\] \(.*double_stream_modulation.*\), not SDXL/);
    const sd = await writeTinyCheckpoint(ctx.paths.models);
    await expect(run({ checkpoint: sd, vae: files.vae })).rejects.toThrow(/^textEncoder\/vae: Stable Diffusion 1\.x checkpoints carry their own text encoders and VAE/);
    expect(loadModelNode.widgets.parse({}).family).toBe('auto');
    for (const id of ['sd1', 'sdxl', 'flux2', 'flux1']) expect(loadModelNode.widgets.parse({ family: id }).family).toBe(id);
    expect(() => loadModelNode.widgets.parse({ family: 'flux2-dev' })).toThrow();
  }, 120_000);

  it('loragraph export takes the ai-toolkit arch from the family widget (and --arch still wins)', async () => {
    const registry = await loadRegistry();
    const a = await importConfigFile(join(repoRoot, 'tests', 'fixtures', 'configs', 'sd15_ai_toolkit.yaml'), registry, { env: { LORAGRAPH_TEST_DATA: '/srv/training' } });
    const load = Object.values(a.api).find((n) => n.class_type === 'LoadModel')!;
    expect(exportAiToolkit(a.api, registry).yaml).toMatch(/arch: sd1/);
    load.inputs.family = 'flux2';
    const out = exportAiToolkit(a.api, registry);
    expect(out.yaml).toMatch(/arch: flux2_klein_9b/);
    expect(out.notExported.join("\n")).toMatch(/family = flux2: no readable FLUX\.2 checkpoint or LoRA file tells the release, exported as arch flux2_klein_9b/);
    load.inputs.family = 'flux1';
    expect(exportAiToolkit(a.api, registry).yaml).toMatch(/arch: flux\n/);
    expect(exportAiToolkit(a.api, registry, { arch: 'flux2_klein_4b' }).yaml).toMatch(/arch: flux2_klein_4b/);
    // Importing an ai-toolkit klein job sets the family, so the export needs no --arch.
    const text = readFileSync(join(repoRoot, 'tests', 'fixtures', 'configs', 'sd15_ai_toolkit.yaml'), 'utf8').replace('arch: "sd1"', 'arch: "flux2_klein_9b"');
    const klein = await importConfigText('klein.yaml', text, registry, { env: { LORAGRAPH_TEST_DATA: '/srv/training' } });
    expect(Object.values(klein.api).find((n) => n.class_type === 'LoadModel')!.inputs.family).toBe('flux2');
    expect(exportAiToolkit(klein.api, registry).yaml).toMatch(/arch: flux2_klein_9b/);
  }, 60_000);
});

// graphs/quickstart-flux.json as shipped, shortened only in its step counts (4 training steps, 2 sampler
// steps), run by the executor on the built-in tiny FLUX.2 [klein] and the bundled star images: the LoRA
// trains the transformer and the text encoder, Save LoRA writes both in kohya's names (an ai-toolkit FLUX.2
// file holds the transformer alone), and the Train node and Sampler show samples. eval:quickstart runs
// the graph at full length and measures what it teaches.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSafetensors } from '../../kernels/io/safetensors';
import { sampleSheetsOf } from '../../nodes/sampling/sheet';
import { QUICKSTART_FLUX } from '../../scripts/build-graphs';
import { runShipped, shippedGraph } from './shipped-graph';

const dataDir = mkdtempSync(join(tmpdir(), 'lg-quickstart-flux-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('graphs/quickstart-flux.json', () => {
  it('trains a LoRA on the tiny klein\'s transformer and text encoder, saves it in kohya\'s names, and shows samples', async () => {
    const g = await shippedGraph('quickstart-flux.json');
    const [train] = g.idOf('Train'), [sampler] = g.idOf('Sampler'), [settings] = g.idOf('SamplerSettings'), [save] = g.idOf('SaveLora'), [target] = g.idOf('LoraTarget');
    expect(g.api[target!]!.inputs).toMatchObject({ trainTextEncoder: QUICKSTART_FLUX.trainTextEncoder });
    expect(g.api[save!]!.inputs).toMatchObject({ format: QUICKSTART_FLUX.saveFormat });
    const { r, paths, seconds } = await runShipped(g, [
      `${train}.steps=4`, `${train}.sampleEvery=2`, `${train}.saveName=qf`, `${sampler}.steps=2`, `${settings}.steps=2`, `${save}.name=qf`,
    ], dataDir, 'qf');
    console.log(`quickstart-flux at 4 training steps ran in ${seconds.toFixed(1)} s`);

    // kohya's names for both parts: the transformer's double blocks and the text encoder's layers, with alphas.
    const keys = [...(await loadSafetensors(join(paths.output, 'qf.safetensors'))).tensors.keys()];
    expect(keys.some((k) => /^lora_unet_double_blocks_0_img_attn_qkv\.lora_down\.weight$/.test(k)), keys.slice(0, 4).join(', ')).toBe(true);
    expect(keys.some((k) => /^lora_te1?_model_layers_\d+_.*\.lora_up\.weight$/.test(k)), keys.filter((k) => k.startsWith('lora_te')).slice(0, 4).join(', ')).toBe(true);
    expect(keys.some((k) => k.endsWith('.alpha'))).toBe(true);

    // The Train node's samples (step 2 and the end) and the Sampler's.
    expect(sampleSheetsOf(r.outputs[train!])).toHaveLength(2);
    expect(sampleSheetsOf(r.outputs[sampler!])).toHaveLength(1);
  }, 600_000);
});

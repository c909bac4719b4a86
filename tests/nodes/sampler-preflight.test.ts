// The Sampler's memory pre-flight: under a small LORAGRAPH_MEMORY_LIMIT_MB the node refuses before any
// ORT session, naming the size, precision and quantisation to change; with room it renders as before.
import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import { samplerNode } from '../../nodes/sampler';
import type { ClipValue, ImagesValue, ModelValue, VaeValue } from '../../nodes/sockets';
import { nodeContext } from './context';
import { loadTiny } from './training-fixture';

const { ctx } = nodeContext();
let model: ModelValue, clip: ClipValue, vae: VaeValue;
beforeAll(async () => { ({ model, clip, vae } = await loadTiny(ctx)); });
const before = process.env.LORAGRAPH_MEMORY_LIMIT_MB;
afterEach(() => { if (before === undefined) delete process.env.LORAGRAPH_MEMORY_LIMIT_MB; else process.env.LORAGRAPH_MEMORY_LIMIT_MB = before; });

const sample = (w: Record<string, unknown>) => samplerNode.execute({ inputs: { model, clip, vae }, widgets: samplerNode.widgets.parse({ steps: 2, ...w }), ctx });

describe('Sampler memory pre-flight', () => {
  it('refuses a preview that cannot fit, naming width/height, precision and quantisation', async () => {
    process.env.LORAGRAPH_MEMORY_LIMIT_MB = '20';
    const err: Error = await sample({ prompts: 'a red circle --w 128 --h 64', seed: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    for (const part of ['Sampling at 128×64 needs an estimated', '20 MiB is available (LORAGRAPH_MEMORY_LIMIT_MB)',
      'lower width and height on the Sampler (now 128×64)', 'set precision to bf16 or fp16 on Load Model (now fp32)', 'Quantize node']) expect(err.message).toContain(part);
  });

  it('renders when the estimate fits', async () => {
    process.env.LORAGRAPH_MEMORY_LIMIT_MB = '16384';
    const r = await sample({ prompts: 'a red circle', seed: 1 });
    expect((r.outputs.images as ImagesValue).images).toHaveLength(1);
  });
});

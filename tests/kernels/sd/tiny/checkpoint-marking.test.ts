// The tiny checkpoint says what it is: SD 1.x's key layout, but not an SD 1.x model (GroupNorm 8 groups
// where SD 1.x hard-codes 32), so its metadata names another architecture; loragraph's loader takes its
// sizes and group counts from the file's own config, and without that config refuses the file.
import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSd, CONFIG_METADATA_KEY } from '../../../../kernels/sd/load';
import { ClipTokenizer } from '../../../../kernels/sd/tokenizer';
import { TINY_CHECKPOINT, TINY_TOKENIZER } from '../../../../kernels/sd/tiny/pretrain';
import { TINY_ARCHITECTURE, tinyCheckpointMetadata } from '../../../../kernels/sd/tiny/train-checkpoint';
import type { SdConfig } from '../../../../kernels/sd/config';

const tokenizer = ClipTokenizer.fromFolder(TINY_TOKENIZER);
const dir = mkdtempSync(join(tmpdir(), 'loragraph-tiny-mark-'));

/** The file split into its header and its tensor bytes (safetensors: u64 length, JSON header, data). */
function parts(path: string) {
  const b = readFileSync(path);
  const n = Number(b.readBigUInt64LE(0));
  return { header: JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown> & { __metadata__: Record<string, string> }, data: b.subarray(8 + n) };
}

/** A copy of the checkpoint with its metadata changed by `edit`, tensor bytes untouched. */
function copyWithMetadata(name: string, edit: (m: Record<string, string>) => void): string {
  const { header, data } = parts(TINY_CHECKPOINT);
  edit(header.__metadata__);
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([len, json, data]));
  return path;
}

describe('the tiny checkpoint is marked as what it is', () => {
  it('names its own architecture and says why it is not SD 1.x; its weights are the evaluated ones', () => {
    const { header, data } = parts(TINY_CHECKPOINT);
    const meta = header.__metadata__;
    const cfg = JSON.parse(meta[CONFIG_METADATA_KEY]) as SdConfig;
    expect(cfg.unet.normGroups).toBe(8);
    expect(meta).toMatchObject(tinyCheckpointMetadata(cfg));
    expect(meta['modelspec.architecture']).toBe(TINY_ARCHITECTURE);
    expect(meta['modelspec.architecture']).not.toMatch(/^stable-diffusion/);
    expect(meta['modelspec.description']).toMatch(/8 groups .* hard-code 32/);
    expect(Object.keys(meta).filter((k) => /architecture/.test(k))).toEqual(['modelspec.architecture']);
    // Relabelling touched only the header: these are the bytes `npm run eval:tiny` and eval:quickstart measured.
    expect(createHash('sha256').update(data).digest('hex')).toBe('41eb00d566ce7235a195b569154f8050520e8bb3ed048ea12638184c83442876');
  });

  it("the loader reads the group count from the file's config", async () => {
    const model = await loadSd(TINY_CHECKPOINT, { tokenizer });
    try {
      expect(model.config.unet.normGroups).toBe(8);
      expect(model.config.vae.normGroups).toBe(8);
    } finally { model.close(); }
    const four = copyWithMetadata('groups-4.safetensors', (m) => {
      const cfg = JSON.parse(m[CONFIG_METADATA_KEY]) as SdConfig;
      m[CONFIG_METADATA_KEY] = JSON.stringify({ ...cfg, unet: { ...cfg.unet, normGroups: 4 } });
    });
    const other = await loadSd(four, { tokenizer });
    try { expect(other.config.unet.normGroups).toBe(4); } finally { other.close(); }
  });

  it('without its config it is refused, not taken for SD 1.5', async () => {
    const bare = copyWithMetadata('bare.safetensors', (m) => { delete m[CONFIG_METADATA_KEY]; });
    await expect(loadSd(bare, { tokenizer })).rejects.toThrow(/tensor problem/);
  });
});

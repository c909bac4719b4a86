// The bundled graphs' example files reach a new project on its first use: the datasets (star images,
// regularization set, bouncing clips) and the input folder's start image the video quickstart's previews
// begin from — without overwriting a user's own file of the same name.
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ensureProjectFolders, projectPaths } from '../../server/paths';
import { EXAMPLE_DATASETS, EXAMPLE_INPUTS } from '../../server/examples';
import { QUICKSTART_VIDEO_START } from '../../scripts/build-graphs';

describe('example files of the bundled graphs', () => {
  it('installs the example datasets and input files into a new project, and keeps a user\'s own input file', async () => {
    const paths = projectPaths(mkdtempSync(join(tmpdir(), 'lg-examples-')));
    await ensureProjectFolders(paths);
    for (const name of Object.keys(EXAMPLE_DATASETS)) expect(existsSync(join(paths.datasets, name))).toBe(true);
    // The video quickstart names its start image; it is there, a 64×64 image, byte for byte the asset.
    expect(Object.keys(EXAMPLE_INPUTS)).toContain(QUICKSTART_VIDEO_START);
    const start = join(paths.input, QUICKSTART_VIDEO_START);
    expect(readFileSync(start)).toEqual(readFileSync(EXAMPLE_INPUTS[QUICKSTART_VIDEO_START]));
    const meta = await sharp(start).metadata();
    expect([meta.width, meta.height]).toEqual([64, 64]);

    writeFileSync(start, 'my own file');
    await ensureProjectFolders(paths);
    expect(readFileSync(start, 'utf8')).toBe('my own file');
  });
});

// The example data the bundled graphs use (the quickstart's star images and the regularization set,
// the video quickstart's clips and the first frame its previews start from), copied into the project's
// datasets and input folders on first use so graphs can name them like any user file.
import { copyFile, cp, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot, type ProjectPaths } from './paths';

export const EXAMPLE_DATASETS: Readonly<Record<string, string>> = {
  'demo-star': join(repoRoot, 'assets', 'demo-dataset'),
  'demo-reg': join(repoRoot, 'assets', 'demo-reg'),
  'demo-video': join(repoRoot, 'assets', 'demo-video'),
};

/** Files for the input folder (a Sampler's startImage), by the name graphs give them. */
export const EXAMPLE_INPUTS: Readonly<Record<string, string>> = {
  'bounce-start.png': join(repoRoot, 'assets', 'demo-input', 'bounce-start.png'),
};

const exists = (p: string) => stat(p).then(() => true, () => false);

/** Copies each example dataset that is not there yet (a user's edits to an existing copy are kept). */
export async function installExampleDatasets(paths: ProjectPaths): Promise<void> {
  for (const [name, source] of Object.entries(EXAMPLE_DATASETS)) {
    const target = join(paths.datasets, name);
    if (!(await exists(source)) || (await exists(target))) continue;
    // Copied beside, then renamed: a half copy never looks like a dataset.
    const tmp = `${target}.tmp-${process.pid}`;
    await cp(source, tmp, { recursive: true });
    await rename(tmp, target).catch(() => rm(tmp, { recursive: true, force: true }));
  }
}

/** Copies each example input file that is not there yet (a user's file of that name is kept). */
export async function installExampleInputs(paths: ProjectPaths): Promise<void> {
  for (const [name, source] of Object.entries(EXAMPLE_INPUTS)) {
    const target = join(paths.input, name);
    if (!(await exists(source)) || (await exists(target))) continue;
    const tmp = `${target}.tmp-${process.pid}`;
    await copyFile(source, tmp);
    await rename(tmp, target).catch(() => rm(tmp, { force: true }));
  }
}

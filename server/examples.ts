// The example data the bundled graphs use (the quickstart's star images and the regularization set,
// the video quickstart's clips and the first frame its previews start from), copied into the project's
// datasets and input folders on first use so graphs can name them like any user file.
import { cp, rename, rm, stat } from 'node:fs/promises';
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

/** Copies each example dataset and input file that is not there yet (a user's edits or own file of that name are kept). */
export async function installExamples(paths: ProjectPaths): Promise<void> {
  for (const [folder, examples] of [[paths.datasets, EXAMPLE_DATASETS], [paths.input, EXAMPLE_INPUTS]] as const) {
    for (const [name, source] of Object.entries(examples)) {
      const target = join(folder, name);
      if (!(await exists(source)) || (await exists(target))) continue;
      // Copied beside, then renamed: a half copy never looks like a dataset or an image.
      const tmp = `${target}.tmp-${process.pid}`;
      await cp(source, tmp, { recursive: true });
      await rename(tmp, target).catch(() => rm(tmp, { recursive: true, force: true }));
    }
  }
}

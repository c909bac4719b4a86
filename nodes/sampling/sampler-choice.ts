// Which samplers a model's family offers: checked when a Sampler renders and when Train's sample strip is
// set up, so a wrong choice fails before any step runs. Kept apart from render.ts, which loads the runtime.
import type { ModelValue } from '../sockets';

/**
 * Refuses a sampler the model's family does not offer (the Sampler's choices are every family's), before
 * anything is compiled — flow-matching models (FLUX, Wan) have no DDPM-only sampler such as DDIM.
 */
export function checkSamplerChoice(model: ModelValue, sampler: string): void {
  const { family } = model;
  if (family.samplers.includes(sampler)) return;
  const flow = family.objective(model.config).kind === 'flow';
  throw new Error(`sampler: ${family.label} ${flow ? 'is a flow-matching model and ' : ''}samples with ${family.samplers.join(', ')}, not '${sampler}' (set the Sampler or Sampler Settings node's sampler widget)`);
}

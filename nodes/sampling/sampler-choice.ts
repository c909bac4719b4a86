// Which samplers and schedulers a model's family offers: checked when a Sampler renders and when Train's sample strip is
// set up, so a wrong choice fails before any step runs. Kept apart from render.ts, which loads the runtime.
import type { ModelValue } from '../sockets';
import { modelLabel } from '../../kernels/families/contract';

/**
 * Refuses a sampler the model's family does not offer (the Sampler's choices are every family's), before
 * anything is compiled — flow-matching models (FLUX, Wan) have no DDPM-only sampler such as DDIM.
 */
export function checkSamplerChoice(model: ModelValue, sampler: string): void {
  const { family } = model;
  if (family.samplers.includes(sampler)) return;
  const flow = family.objective(model.config).kind === 'flow';
  throw new Error(`sampler: ${modelLabel(family, model.config)} ${flow ? 'is a flow-matching model and ' : ''}samples with ${family.samplers.join(', ')}, not '${sampler}' (set the Sampler or Sampler Settings node's sampler widget)`);
}

/**
 * Refuses a scheduler the model's family does not step on, or one its sampler ignores (SD's DDIM steps on
 * its own even timesteps), before anything is compiled.
 */
export function checkSchedulerChoice(model: ModelValue, sampler: string, scheduler: string): void {
  const { family } = model;
  const offered = family.schedulers ?? ['auto'];
  if (!offered.includes(scheduler)) {
    throw new Error(`scheduler: ${modelLabel(family, model.config)} steps on ${offered.join(', ')}, not '${scheduler}' (set the Sampler or Sampler Settings node's scheduler widget)`);
  }
  const only = family.samplerSchedulers?.[sampler];
  if (only && !only.includes(scheduler)) {
    throw new Error(`scheduler: ${modelLabel(family, model.config)}'s ${sampler} sampler steps on its own timesteps and takes ${only.join(' or ')}, not '${scheduler}' (set the scheduler widget, or pick another sampler)`);
  }
}

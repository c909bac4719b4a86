// The DOP node (Differential Output Preservation, as ai-toolkit users know it): keeps the LoRA from
// changing what the model does for prompts without the trigger. Each step the base model's prediction
// on a preservation prompt (the trigger swapped for a class word, or a regularization image's caption)
// is the target for the adapted model on the same prompt. Also offers Differential Guidance.
import { z } from 'zod';
import { defineNode, input, widget } from './define';
import type { Dataset } from './data/dataset';
import type { RegularizerValue } from './training/regularizer';

export default defineNode({
  type: 'DOP',
  title: 'DOP (Differential Output Preservation)',
  category: 'training',
  description: 'Preserves the base model on prompts without the trigger (less concept leak). Optional regularization images; optional Differential Guidance.',
  version: 1,
  inputs: {
    regularization: input<Dataset>('DATASET', { optional: true, tooltip: 'regularization images: preserve on these (their captions are the preservation prompts)' }),
  },
  widgets: z.object({
    preservationClass: widget.text({ default: 'shape', tooltip: 'class word that replaces the trigger in preservation prompts (e.g. "woman", "dog", "shape")' }),
    lossMultiplier: widget.float({ default: 1, min: 0, max: 100, step: 0.05, tooltip: 'weight of the preservation loss (ai-toolkit\'s diff_output_preservation_multiplier)' }),
    blankPromptPreservation: widget.toggle({ default: false, tooltip: 'also preserve the empty prompt (half of each preservation batch)' }),
    differentialGuidance: widget.toggle({ default: false, tooltip: 'push the target past itself, away from the current prediction (learns faster)' }),
    differentialGuidanceScale: widget.float({ default: 3, min: 0, max: 20, step: 0.1, tooltip: 'Differential Guidance scale' }),
  }),
  outputs: { regularizer: 'REGULARIZER' },
  execute({ inputs, widgets: w }) {
    if (inputs.regularization && !inputs.regularization.isRegularization) {
      throw new Error('regularization: the connected Dataset is not marked "isRegularization"; its trigger handling would leak the concept');
    }
    if (w.lossMultiplier > 0 && !w.preservationClass.trim() && !inputs.regularization) {
      throw new Error('preservationClass: give a class word (or connect regularization images) for DOP');
    }
    const value: RegularizerValue = Object.freeze({
      kind: 'regularizer' as const,
      preservationMultiplier: w.lossMultiplier,
      classWord: w.preservationClass.trim(),
      blankPrompt: w.blankPromptPreservation,
      dataset: inputs.regularization,
      differentialGuidance: w.differentialGuidance ? w.differentialGuidanceScale : 0,
      byteSize: () => 128,
    });
    const parts = [w.lossMultiplier > 0 ? `DOP ×${w.lossMultiplier} on ${inputs.regularization ? 'regularization images' : `"${w.preservationClass}"`}` : 'DOP off'];
    if (w.differentialGuidance) parts.push(`differential guidance ×${w.differentialGuidanceScale}`);
    return { outputs: { regularizer: value }, ui: { text: parts } };
  },
});

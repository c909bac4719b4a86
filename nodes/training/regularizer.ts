// The REGULARIZER value made by the DOP node: Differential Output Preservation settings (and
// Differential Guidance), read by the Train node.
import type { Dataset } from '../data/dataset';

export interface RegularizerValue {
  readonly kind: 'regularizer';
  /** Weight of the preservation loss; 0 turns DOP off (Differential Guidance may still be on). */
  readonly preservationMultiplier: number;
  /** The word that stands in for the trigger in preservation prompts (ai-toolkit's diff_output_preservation_class). */
  readonly classWord: string;
  /** Also preserve the empty prompt (half of each preservation batch). */
  readonly blankPrompt: boolean;
  /** Regularization images: preservation uses them and their captions instead of the training batch. */
  readonly dataset?: Dataset;
  /** Differential Guidance scale; 0 = off. */
  readonly differentialGuidance: number;
  byteSize(): number;
}

/** The training caption with the trigger word replaced by the class word ("a red sks" → "a red star"). */
export function preservationCaption(caption: string, trigger: string, classWord: string): string {
  if (!trigger) return caption;
  const escaped = trigger.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return caption.replace(new RegExp(`(^|[^\\p{L}\\p{N}_])${escaped}(?=$|[^\\p{L}\\p{N}_])`, 'gu'), `$1${classWord}`).replace(/\s+/g, ' ').trim();
}

// Caption processing applied on every draw, the way kohya and ai-toolkit do it: trigger word,
// caption dropout, tag shuffling with kept leading tokens, and tag dropout.
import type { Rng } from '../../kernels/random';

export interface CaptionSettings {
  /** Replaces `[trigger]`; prepended when absent for non-regularization datasets. '' = none. */
  triggerWord: string;
  isRegularization: boolean;
  /** Probability that the whole caption becomes "" (trains the unconditional case). */
  captionDropoutRate: number;
  /** Probability that each tag (after the kept ones) is dropped. */
  tokenDropoutRate: number;
  shuffleTags: boolean;
  /** kohya's keep_tokens: this many leading tags stay in place and are never dropped. */
  keepTokens: number;
  /** Tag separator, "," by default; tags are joined back with the separator and a space. */
  separator: string;
}

export const defaultCaptionSettings: CaptionSettings = {
  triggerWord: '',
  isRegularization: false,
  captionDropoutRate: 0,
  tokenDropoutRate: 0,
  shuffleTags: false,
  keepTokens: 0,
  separator: ',',
};

const TRIGGER_PLACEHOLDER = /\[trigger\]/gi;

export function splitTags(caption: string, separator: string): string[] {
  return caption
    .split(separator)
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
}

export function joinTags(tags: readonly string[], separator: string): string {
  const glue = separator.trim() === '' ? separator : `${separator.trim()} `;
  return tags.join(glue);
}

/** The caption with `[trigger]` filled in and, unless this is regularization data, the trigger added first. */
export function applyTrigger(caption: string, settings: Pick<CaptionSettings, 'triggerWord' | 'isRegularization' | 'separator'>): string {
  const trigger = settings.triggerWord.trim();
  const filled = caption.replace(TRIGGER_PLACEHOLDER, trigger);
  if (trigger === '' || settings.isRegularization || containsTrigger(filled, trigger, settings.separator)) return filled;
  const tags = splitTags(filled, settings.separator);
  return joinTags([trigger, ...tags], settings.separator);
}

function containsTrigger(caption: string, trigger: string, separator: string): boolean {
  // A whole-word match: "sks" is present in "a photo of sks dog" but not in "sksx".
  const escaped = trigger.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const edge = `[\\s${escapeClass(separator)}]`;
  return new RegExp(`(^|${edge})${escaped}($|${edge})`, 'u').test(caption);
}

function escapeClass(s: string): string {
  return s.replace(/[\]\\^-]/g, '\\$&');
}

/**
 * One draw of the final caption for a raw caption. Order: caption dropout, trigger, then tags after
 * the first `keepTokens` are shuffled and tag-dropped. A trigger we prepended counts as the first
 * kept token so that it is never shuffled away or dropped.
 */
export function processCaption(raw: string, settings: CaptionSettings, rng: Rng): string {
  // Always draw the dropout number so that the sequence of draws does not depend on the rate.
  const dropped = rng.uniform() < settings.captionDropoutRate;
  if (dropped) return '';
  const trigger = settings.triggerWord.trim();
  const filled = raw.replace(TRIGGER_PLACEHOLDER, trigger);
  const tags = splitTags(filled, settings.separator);
  const prepend = trigger !== '' && !settings.isRegularization && !containsTrigger(filled, trigger, settings.separator);
  const keep = tags.slice(0, settings.keepTokens);
  let rest = tags.slice(settings.keepTokens);
  if (settings.shuffleTags) rest = rng.shuffle(rest);
  if (settings.tokenDropoutRate > 0) {
    // The trigger itself is the concept being trained: it is never dropped.
    rest = rest.filter((t) => t === trigger || rng.uniform() >= settings.tokenDropoutRate);
  }
  return joinTags(prepend ? [trigger, ...keep, ...rest] : [...keep, ...rest], settings.separator);
}

/** Settings that make a caption vary from draw to draw, so its text embedding cannot be cached. */
export function captionVariesPerDraw(settings: CaptionSettings): string[] {
  const reasons: string[] = [];
  if (settings.shuffleTags) reasons.push('shuffleTags');
  if (settings.tokenDropoutRate > 0) reasons.push('tokenDropoutRate');
  return reasons;
}

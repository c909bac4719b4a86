// Sample prompts as kohya's sd-scripts reads them: one per line, each with optional inline overrides
// `--n <negative>`, `--d <seed>`, `--w <width>`, `--h <height>`, `--s <steps>`, `--l <cfg>`.
import type { SamplerPrompt } from '../sockets';

const NUMERIC = { d: 'seed', w: 'width', h: 'height', s: 'steps', l: 'cfg' } as const;

/** Parses one line; errors name the line and the option. */
export function parsePromptLine(line: string, lineNo = 1): SamplerPrompt {
  const parts = line.split(/\s--(?=[a-zA-Z]\s|[a-zA-Z]$)/);
  if (/^--[a-zA-Z]\s/.test(parts[0])) throw new Error(`prompts line ${lineNo}: starts with an option; write the prompt first ("a photo of sks dog --d 42")`);
  const out: SamplerPrompt = { prompt: parts[0].trim() };
  for (const part of parts.slice(1)) {
    const flag = part[0];
    const value = part.slice(1).trim();
    if (flag === 'n') { out.negativePrompt = value; continue; }
    const field = NUMERIC[flag as keyof typeof NUMERIC];
    if (!field) throw new Error(`prompts line ${lineNo}: unknown option --${flag} (known: --n negative, --d seed, --w width, --h height, --s steps, --l cfg)`);
    const n = Number(value);
    if (value === '' || !Number.isFinite(n)) throw new Error(`prompts line ${lineNo}: --${flag} needs a number, got "${value}"`);
    if (field !== 'cfg' && !(Number.isInteger(n) && n >= (field === 'seed' ? 0 : 1))) throw new Error(`prompts line ${lineNo}: --${flag} needs a ${field === 'seed' ? 'non-negative' : 'positive'} integer, got ${value}`);
    out[field] = n;
  }
  return out;
}

/** Non-empty lines (a line starting with # is a comment). */
export function parsePrompts(text: string): SamplerPrompt[] {
  const prompts: SamplerPrompt[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() && !line.trim().startsWith('#')) prompts.push(parsePromptLine(line.trim(), i + 1));
  });
  return prompts;
}

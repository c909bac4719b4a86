// The history panel's sweep view: a sweep's finished jobs side by side (settings, worker, final loss with the
// lowest marked, images), the shared cache job left out, newest sweep first. Rendered to HTML with React's server
// renderer; the module reads the page's token at load, so a minimal window stands in for the page.
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { beforeAll, describe, expect, it } from 'vitest';
import type { HistoryEntry } from '../../server/protocol';

let view: typeof import('../../editor/panels/SweepResults');
beforeAll(async () => {
  const store = new Map<string, string>();
  Object.assign(globalThis, {
    window: { location: { href: 'http://127.0.0.1:8188/' }, history: { replaceState() {} } },
    sessionStorage: { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => store.set(k, v) },
  });
  view = await import('../../editor/panels/SweepResults');
});

const entry = (n: number, sweep: HistoryEntry['sweep'], extra: Partial<HistoryEntry> = {}): HistoryEntry => ({
  promptId: `p${n}`,
  number: n,
  prompt: {},
  status: 'success',
  createdAt: n,
  startedAt: n,
  endedAt: n + 1,
  outputs: {},
  executed: [],
  cached: [],
  ...(sweep ? { sweep } : {}),
  ...extra,
});

describe('sweep results', () => {
  it('shows a sweep\'s jobs side by side with their settings, worker, loss and images, the best loss marked', () => {
    const s = { id: 's1', count: 3 };
    const history = [
      entry(1, { ...s, index: 0, settings: {}, shared: true }),
      entry(2, { ...s, index: 2, settings: { 'Optimizer.learningRate': 0.0003 } }, { finalLoss: 0.12, worker: 'gpu-2' }),
      entry(3, { ...s, index: 1, settings: { 'Optimizer.learningRate': 0.0001 } }, {
        finalLoss: 0.2,
        worker: 'gpu-1',
        outputs: { '8': { images: [{ filename: 'sample.png', subfolder: '', type: 'temp' }] } },
      }),
      entry(4, { ...s, index: 3, settings: { 'Optimizer.learningRate': 0.001 } }, { status: 'error', worker: 'gpu-1' }),
      entry(5, undefined),
    ];
    expect(view.sweepsOf(history).map((g) => g.map((h) => h.number))).toEqual([[3, 2, 4]]);
    const html = renderToStaticMarkup(createElement(view.SweepResults, { history }));
    const columns = html.split('class="sweep-job').slice(1);
    expect(columns).toHaveLength(3);
    expect(columns[0]).toMatch(/learningRate=0\.0001[\s\S]*#3 success · gpu-1[\s\S]*loss 0\.2000[\s\S]*<img src="api\/view\?filename=sample\.png/);
    expect(columns[1]).toMatch(/^[^"]* best"[\s\S]*learningRate=0\.0003[\s\S]*gpu-2[\s\S]*loss 0\.1200/);
    expect(columns[2]).toMatch(/status-error[\s\S]*learningRate=0\.001[\s\S]*loss –/);
    expect(html).toMatch(/Sweep · 3\/3 done/);
  });

  it('shows nothing without sweeps', () => {
    expect(renderToStaticMarkup(createElement(view.SweepResults, { history: [entry(1, undefined)] }))).toBe('');
  });
});

// The editor's live job state, folded from server messages: statuses, progress with loss, previews replaced by
// output images, the state a reconnecting client is sent, validation errors, and the loss smoothing.
import { describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../server/protocol';
import { applyLiveState, applyPreview, applyServerMessage, emptyRun, smoothLoss, type RunState } from '../../editor/state/run';

const fold = (msgs: ServerMessage[], start: RunState = emptyRun) => msgs.reduce(applyServerMessage, start);
const progress = (node: string, step: number, loss?: number): ServerMessage => ({
  type: 'progress',
  data: { promptId: 'p1', node, step, total: 10, itPerSec: 5, etaSeconds: (10 - step) / 5, ...(loss !== undefined ? { data: { loss } } : {}) },
});

describe('live job state', () => {
  it('follows a job: cached nodes, the executing node with progress and loss, outputs, and the end', () => {
    const mid = fold([
      { type: 'execution_start', data: { promptId: 'p1', timestamp: 1 } },
      { type: 'execution_cached', data: { promptId: 'p1', nodes: ['1', '2'] } },
      { type: 'executing', data: { promptId: 'p1', node: '3' } },
      progress('3', 1, 0.9),
      progress('3', 2, 0.8),
      progress('3', 2, 0.7), // a repeated step does not add a point
      progress('3', 3),
    ]);
    expect(mid.running).toBe(true);
    expect(mid.nodes['1']!.status).toBe('cached');
    expect(mid.nodes['3']).toMatchObject({ status: 'executing', progress: { step: 3, total: 10 } });
    expect(mid.nodes['3']!.loss).toEqual([{ step: 1, loss: 0.9 }, { step: 2, loss: 0.8 }]);

    const end = fold(
      [
        { type: 'executing', data: { promptId: 'p1', node: '4' } },
        { type: 'executed', data: { promptId: 'p1', node: '4', cached: false, output: { images: [{ filename: 'a b.png', subfolder: 's', type: 'output' }] } } },
        { type: 'execution_success', data: { promptId: 'p1', timestamp: 2 } },
        { type: 'executing', data: { promptId: 'p1', node: null } },
      ],
      mid,
    );
    expect(end.running).toBe(false);
    expect(end.nodes['3']!.status).toBe('done');
    expect(end.nodes['4']).toMatchObject({ status: 'done', images: ['api/view?filename=a+b.png&subfolder=s&type=output'] });
  });

  it('shows preview frames until the output images arrive, keeping only the latest 16', () => {
    let run = fold([
      { type: 'execution_start', data: { promptId: 'p1', timestamp: 1 } },
      { type: 'executing', data: { promptId: 'p1', node: '4' } },
    ]);
    const dropped: string[] = [];
    for (let i = 0; i < 18; i++) {
      const r = applyPreview(run, '4', `blob:${i}`);
      run = r.run;
      dropped.push(...r.dropped);
    }
    expect(run.nodes['4']!.previews).toHaveLength(16);
    expect(dropped).toEqual(['blob:0', 'blob:1']);
    run = applyServerMessage(run, { type: 'executed', data: { promptId: 'p1', node: '4', cached: false, output: { images: [{ filename: 'x.png', subfolder: '', type: 'output' }] } } });
    expect(run.nodes['4']!.previews).toEqual([]);
    expect(run.nodes['4']!.images).toHaveLength(1);
  });

  it('marks the failed node with its message, and ignores events of other jobs', () => {
    const run = fold([
      { type: 'execution_start', data: { promptId: 'p1', timestamp: 1 } },
      { type: 'executing', data: { promptId: 'p1', node: '2' } },
      { type: 'progress', data: { promptId: 'other', node: '2', step: 5, total: 9, itPerSec: null, etaSeconds: null } },
      { type: 'execution_error', data: { promptId: 'p1', node: '2', nodeType: 'Train', message: 'out of memory', inputs: {} } },
    ]);
    expect(run.nodes['2']).toMatchObject({ status: 'error', error: 'out of memory', progress: null });
    expect(run.running).toBe(false);
    expect(run.lastError).toBe('Train 2: out of memory');
  });

  it('restores the running job from the status a (re)connecting client is sent', () => {
    const run = applyLiveState(emptyRun, {
      queue: { running: [], pending: [] },
      exec: {
        promptId: 'p9',
        node: '3',
        progress: { promptId: 'p9', node: '3', step: 40, total: 100, itPerSec: 2, etaSeconds: 30, data: { loss: 0.5 } },
        executed: ['2'],
        cached: ['1'],
        outputs: { '2': { images: [{ filename: 'd.png', subfolder: '', type: 'output' }] } },
      },
    });
    expect(run).toMatchObject({ promptId: 'p9', running: true, executing: '3' });
    expect(run.nodes['1']!.status).toBe('cached');
    expect(run.nodes['2']).toMatchObject({ status: 'done', images: ['api/view?filename=d.png&subfolder=&type=output'] });
    expect(run.nodes['3']).toMatchObject({ status: 'executing', progress: { step: 40 }, loss: [{ step: 40, loss: 0.5 }] });
    // Then the job ends while the client was away: the next status says nothing runs.
    expect(applyLiveState(run, { queue: { running: [], pending: [] }, exec: null }).running).toBe(false);
  });

  it('smooths loss with a debiased moving average (0 = raw)', () => {
    expect(smoothLoss([1, 2, 3], 0)).toEqual([1, 2, 3]);
    const s = smoothLoss([4, 0], 0.5);
    expect(s[0]).toBeCloseTo(4); // debiased: the first point is itself
    expect(s[1]).toBeCloseTo((0.5 * 0.5 * 4 + 0.5 * 0) / (0.5 * 0.5 + 0.5));
    expect(smoothLoss(Array(50).fill(2), 0.9).every((v) => Math.abs(v - 2) < 1e-12)).toBe(true);
  });
});

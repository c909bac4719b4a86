// The live state a late client receives keeps the running job's whole loss curve.
import { describe, it, expect } from 'vitest';
import { LiveJobState } from '../../server/liveState';

describe('LiveJobState', () => {
  it('collects loss points per node from progress events and drops them when the job ends', () => {
    const s = new LiveJobState();
    s.apply({ type: 'execution_start', data: { promptId: 'p' } } as never);
    s.apply({ type: 'executing', data: { promptId: 'p', node: '5' } } as never);
    for (let step = 1; step <= 3; step++) {
      s.apply({ type: 'progress', data: { promptId: 'p', node: '5', step, total: 3, itPerSec: 1, etaSeconds: 0, data: { loss: step / 10 } } } as never);
    }
    s.apply({ type: 'progress', data: { promptId: 'p', node: '5', step: 3, total: 3, itPerSec: 1, etaSeconds: 0, data: { phase: 'saving' } } } as never);
    expect(s.current()!.loss).toEqual({ '5': [[1, 0.1], [2, 0.2], [3, 0.3]] });
    s.apply({ type: 'executing', data: { promptId: 'p', node: null } } as never);
    expect(s.current()).toBeNull();
  });
});

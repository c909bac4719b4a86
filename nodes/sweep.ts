// The Sweep node: asks for one job per value of a widget elsewhere in the graph ("Optimizer.learningRate" over
// "1e-4, 3e-4, 1e-3"). It is not executed: queueing the graph expands it (server/sweep.ts), and the jobs'
// results show side by side in the editor's history. Several Sweep nodes sweep every combination.
import { z } from 'zod';
import { defineNode, widget } from './define';

export default defineNode({
  type: 'Sweep',
  title: 'Sweep',
  category: 'utils',
  description: 'Queues one job per value of another node\'s widget (e.g. Optimizer.learningRate = 1e-4, 3e-4, 1e-3) to compare their samples and final loss. Shared work (latent and text caches) is done once.',
  version: 1,
  inputs: {},
  widgets: z.object({
    widget: widget.text({ default: 'Optimizer.learningRate', tooltip: '<node title or id>.<widget name>' }),
    values: widget.text({ default: '1e-4, 3e-4, 1e-3', tooltip: 'comma-separated values, one job each' }),
  }),
  outputs: {},
  execute() {
    throw new Error('Sweep nodes are expanded when the graph is queued; run the graph through the queue or `loragraph run`');
  },
});

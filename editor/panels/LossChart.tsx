// The live loss curve of a Train node (uPlot): raw loss faint, smoothed loss bold, with a smoothing slider as in
// TensorBoard. Reads the node's loss points from the store.
import { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { editorStore } from '../state/editor';
import { smoothLoss } from '../state/run';
import { useStore } from '../state/store';

export function LossChart({ nodeId }: { nodeId: string }) {
  const points = useStore(editorStore, (s) => s.run.nodes[nodeId]?.loss);
  const [smoothing, setSmoothing] = useState(0.6);
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    const el = host.current!;
    plot.current = new uPlot(
      {
        width: el.clientWidth || 280,
        height: el.clientHeight || 120,
        legend: { show: false },
        cursor: { show: false },
        scales: { x: { time: false } },
        axes: [
          { stroke: '#aaa', grid: { stroke: '#333' }, size: 22, font: '10px sans-serif' },
          { stroke: '#aaa', grid: { stroke: '#333' }, size: 40, font: '10px sans-serif' },
        ],
        series: [{}, { stroke: 'rgba(120,170,255,0.35)', width: 1 }, { stroke: '#ffb347', width: 2 }],
      },
      [[], [], []],
      el,
    );
    return () => plot.current?.destroy();
  }, []);

  useEffect(() => {
    if (!plot.current || !points) return;
    const loss = points.map((p) => p.loss);
    plot.current.setData([points.map((p) => p.step), loss, smoothLoss(loss, smoothing)]);
  }, [points, smoothing]);

  const last = points?.[points.length - 1];
  return (
    <div className="loss-chart" data-points={points?.length ?? 0}>
      <div className="loss-chart-head">
        <span>loss {last ? last.loss.toPrecision(4) : ''}</span>
        <label title="exponential moving average weight (0 = raw)">
          smoothing
          <input type="range" min={0} max={0.99} step={0.01} value={smoothing} onChange={(e) => setSmoothing(Number(e.target.value))} />
        </label>
      </div>
      <div ref={host} className="loss-chart-plot" />
    </div>
  );
}

// A uPlot line chart that follows its container's width. The numbers are also in a table beside
// it (the chart's text alternative), so the chart itself is one labelled image for screen readers.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { html } from './html.js';

/**
 * @param {{ label: string, x: number[], series: { label: string, color: string, values: number[] }[] }} props
 *   x: bucket start times in ms; values: one per bucket
 */
export function LineChart({ label, x, series }) {
  const box = useRef(/** @type {HTMLDivElement | null} */ (null));

  useEffect(() => {
    const el = box.current;
    if (el === null) return undefined;
    const height = () => (el.clientWidth < 500 ? 200 : 260);
    const plot = new uPlot(
      {
        width: Math.max(el.clientWidth, 200),
        height: height(),
        cursor: { drag: { x: false, y: false } },
        // From 0 (or below: a bucket's change of held events can be negative), at least to 1.
        scales: { x: { time: true }, y: { range: (_u, min, max) => [Math.min(0, min), Math.max(1, max)] } },
        axes: [{}, { size: 48 }],
        series: [{ label: 'Time' }, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, points: { show: false } }))],
      },
      // uPlot's times are seconds.
      [x.map((t) => t / 1000), ...series.map((s) => s.values)],
      el,
    );
    const observer = new ResizeObserver(() => plot.setSize({ width: Math.max(el.clientWidth, 200), height: height() }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.destroy();
    };
  }, [x, series]);

  return html`<figure class="chart">
    <div ref=${box} role="img" aria-label=${label}></div>
    <figcaption>${label}</figcaption>
  </figure>`;
}

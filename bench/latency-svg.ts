// The plot of bench/RESULTS.md: latency percentiles (p50 solid, p99 dashed) against the offered
// request rate, one colour per path (Sigil pair, HAProxy pair, direct), written as SVG by hand so no
// plotting dependency is needed. Both axes are logarithmic: rates double from step to step, and
// latencies span 0.1 ms idle to seconds past saturation. Pure: curves in, text out.
import type { LatencyCurve, LatencyPoint } from './results.js';

const WIDTH = 760;
const HEIGHT = 460;
const MARGIN = { left: 70, right: 190, top: 40, bottom: 60 } as const;
/** Colour-blind-safe (Okabe–Ito) colours, in series order. */
const COLOURS = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00'] as const;
/** A point whose path answered less than this share of the offered rate is drawn hollow: saturated. */
export const SATURATED_SHARE = 0.9;
const TICK_STEPS = [1, 2, 5] as const;
/** Room left and right of the lowest and highest rate, as a factor on the log axis. */
const AXIS_MARGIN = 1.3;

type Percentile = 'p50' | 'p99';

function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** Round numbers (1, 2, 5 × 10^k) from below `min` up to above `max`, for a log axis. */
function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let exp = Math.floor(Math.log10(min)); exp <= Math.ceil(Math.log10(max)); exp++) {
    for (const step of TICK_STEPS) {
      const value = step * 10 ** exp;
      if (value >= min / 1.0001 && value <= max * 1.0001) ticks.push(Number(value.toPrecision(3)));
    }
  }
  return ticks;
}

/**
 * A log axis over the data's extent mapped onto [from, to] pixels: widened to whole decades (latency,
 * where the decade labels carry the reading) or by a margin (rates, a few doublings wide).
 */
function logScale(values: readonly number[], from: number, to: number, widen: 'decade' | 'margin') {
  const positive = values.filter((v) => Number.isFinite(v) && v > 0);
  const lo = positive.length > 0 ? Math.min(...positive) : 1;
  const hi = positive.length > 0 ? Math.max(...positive) : 10;
  const min = widen === 'decade' ? 10 ** Math.floor(Math.log10(lo)) : lo / AXIS_MARGIN;
  const max = hi <= min ? min * 10 : widen === 'decade' ? 10 ** Math.ceil(Math.log10(hi)) : hi * AXIS_MARGIN;
  const span = Math.log10(max) - Math.log10(min);
  return {
    min,
    max,
    at: (v: number) => from + ((Math.log10(v) - Math.log10(min)) / span) * (to - from),
  };
}

const label = (v: number) => (v >= 1_000 ? `${v / 1_000}k` : String(v));
const px = (v: number) => v.toFixed(1);

/** Only points that can sit on a log axis. */
function plottable(p: LatencyPoint, which: Percentile): boolean {
  const ms = which === 'p50' ? p.p50Ms : p.p99Ms;
  return Number.isFinite(ms) && ms > 0 && p.ratePerS > 0;
}

/** The SVG document: one <g class="series"> per curve, each with a p50 and a p99 polyline. */
export function renderLatencySvg(curves: readonly LatencyCurve[], title: string): string {
  const plot = {
    left: MARGIN.left,
    right: WIDTH - MARGIN.right,
    top: MARGIN.top,
    bottom: HEIGHT - MARGIN.bottom,
  };
  const points = curves.flatMap((c) => c.points);
  const x = logScale(
    points.map((p) => p.ratePerS),
    plot.left,
    plot.right,
    'margin',
  );
  const y = logScale(
    points.flatMap((p) => [p.p50Ms, p.p99Ms]),
    plot.bottom,
    plot.top,
    'decade',
  );
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`,
  );
  // Axes, grid and tick labels.
  out.push('<g class="axis" data-axis="x" stroke="#999999">');
  for (const tick of logTicks(x.min, x.max)) {
    const at = px(x.at(tick));
    out.push(
      `<line x1="${at}" y1="${plot.top}" x2="${at}" y2="${plot.bottom}" stroke="#eeeeee"/>`,
      `<text x="${at}" y="${plot.bottom + 16}" text-anchor="middle" stroke="none" fill="#333333" data-tick="${tick}">${label(tick)}</text>`,
    );
  }
  out.push(
    `<line x1="${plot.left}" y1="${plot.bottom}" x2="${plot.right}" y2="${plot.bottom}"/>`,
    `<text x="${(plot.left + plot.right) / 2}" y="${HEIGHT - 18}" text-anchor="middle" stroke="none" fill="#333333">offered rate (requests/s, log scale)</text>`,
    '</g>',
    '<g class="axis" data-axis="y" stroke="#999999">',
  );
  for (const tick of logTicks(y.min, y.max)) {
    const at = px(y.at(tick));
    out.push(
      `<line x1="${plot.left}" y1="${at}" x2="${plot.right}" y2="${at}" stroke="#eeeeee"/>`,
      `<text x="${plot.left - 6}" y="${at}" dy="4" text-anchor="end" stroke="none" fill="#333333" data-tick="${tick}">${tick}</text>`,
    );
  }
  out.push(
    `<line x1="${plot.left}" y1="${plot.top}" x2="${plot.left}" y2="${plot.bottom}"/>`,
    `<text transform="translate(18 ${(plot.top + plot.bottom) / 2}) rotate(-90)" text-anchor="middle" stroke="none" fill="#333333">latency (ms, log scale)</text>`,
    '</g>',
  );
  // Series.
  curves.forEach((curve, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    out.push(`<g class="series" data-name="${escapeXml(curve.name)}" stroke="${colour}" fill="${colour}">`);
    for (const which of ['p50', 'p99'] as const) {
      const shown = curve.points.filter((p) => plottable(p, which));
      const ms = (p: LatencyPoint) => (which === 'p50' ? p.p50Ms : p.p99Ms);
      const line = shown.map((p) => `${px(x.at(p.ratePerS))},${px(y.at(ms(p)))}`).join(' ');
      out.push(
        `<polyline data-percentile="${which}" fill="none" stroke-width="2"${which === 'p99' ? ' stroke-dasharray="6 4"' : ''} points="${line}"/>`,
      );
      for (const p of shown) {
        const saturated = p.achievedPerS < SATURATED_SHARE * p.ratePerS;
        out.push(
          `<circle data-percentile="${which}" data-rate="${p.ratePerS}" data-ms="${ms(p)}" cx="${px(x.at(p.ratePerS))}" cy="${px(y.at(ms(p)))}" r="3.5"${saturated ? ' fill="#ffffff"' : ''}/>`,
        );
      }
    }
    out.push('</g>');
  });
  // Legend.
  const legendX = plot.right + 16;
  out.push(`<g class="legend" font-size="12">`);
  curves.forEach((curve, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const top = plot.top + 10 + i * 22;
    out.push(
      `<line x1="${legendX}" y1="${top}" x2="${legendX + 24}" y2="${top}" stroke="${colour}" stroke-width="2"/>`,
      `<text x="${legendX + 30}" y="${top + 4}">${escapeXml(curve.name)}</text>`,
    );
  });
  const notesTop = plot.top + 20 + curves.length * 22;
  out.push(
    `<line x1="${legendX}" y1="${notesTop}" x2="${legendX + 24}" y2="${notesTop}" stroke="#333333" stroke-width="2"/>`,
    `<text x="${legendX + 30}" y="${notesTop + 4}">p50</text>`,
    `<line x1="${legendX}" y1="${notesTop + 20}" x2="${legendX + 24}" y2="${notesTop + 20}" stroke="#333333" stroke-width="2" stroke-dasharray="6 4"/>`,
    `<text x="${legendX + 30}" y="${notesTop + 24}">p99</text>`,
    `<circle cx="${legendX + 12}" cy="${notesTop + 40}" r="3.5" stroke="#333333" fill="#ffffff"/>`,
    `<text x="${legendX + 30}" y="${notesTop + 44}">&lt; ${SATURATED_SHARE * 100}% answered</text>`,
    '</g>',
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}

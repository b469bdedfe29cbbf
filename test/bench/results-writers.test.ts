// The writers of `npm run bench` (bench/all.ts), without running a bench: RESULTS.md from a sitting,
// the latency-vs-rate SVG from curves, the JSON hand-over between a bench and the runner, and the
// sweep's saturation rule. The benches themselves are run by hand (`npm run bench -- --quick`).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { renderLatencySvg } from '../../bench/latency-svg.js';
import { keepsUp, pointOf } from '../../bench/proxy-rate-sweep.js';
import {
  type LatencyCurve,
  rangeOf,
  readResults,
  reportResults,
  resultsPathOf,
} from '../../bench/results.js';
import { renderResultsMd, type Sitting, verdictOf } from '../../bench/results-md.js';

const machine = {
  cpuModel: 'Test CPU @ 2.0GHz',
  cores: 2,
  ramGiB: 23.4,
  node: 'v20.20.0',
  os: 'Debian GNU/Linux 12 (bookworm), kernel 6.1.0',
};

function sitting(overrides: Partial<Sitting> = {}): Sitting {
  return {
    startedIso: '2026-12-07T19:30:00.000Z',
    quick: false,
    durationS: 754,
    machine,
    plotFile: 'latency-vs-rate.svg',
    steps: [
      {
        title: 'CA issuance',
        command: 'npm run bench:ca',
        durationS: 21,
        loadBefore: 0.03,
        results: {
          bench: 'ca',
          figures: [
            {
              name: 'X.509-SVID issuance',
              value: '5,300/s',
              range: '5,100/s–5,500/s',
              target: '≥ 5,000/s',
              source: 'issue 2',
              reference: 'raw sign+verify: 11,400/s',
              pass: true,
            },
            { name: 'ratio | with a pipe', value: '38.0%', target: '≥ 40%', source: 'issue 2', pass: false },
            { name: 'per CPU-second', value: '5,400/s' },
          ],
        },
      },
      {
        title: 'Sidecar proxy',
        command: 'npm run bench:proxy',
        durationS: 600,
        loadBefore: 0.1,
        results: {
          bench: 'proxy',
          figures: [
            { name: 'h1: CPU per request', value: '3.2x', target: '≤ 2.5x', source: 'issue 5', pass: false },
          ],
          backgroundCores: 0.05,
          curves: [{ name: 'Sigil pair', points: [] }],
          notes: ['wrk 50 connections'],
        },
      },
      {
        title: 'SVID rotation under load',
        command: 'npm run bench:rotation',
        durationS: 40,
        loadBefore: 0.4,
        error: 'exited with 2 and wrote no figures',
      },
    ],
    ...overrides,
  };
}

/** The trimmed cells of the table row whose first cell is `first` (escaped pipes kept as `\|`). */
function rowCells(md: string, first: string): string[] {
  const row = md.split('\n').find((line) => line.startsWith('|') && cellsOf(line)[0] === first);
  expect(row, `a row starting with "${first}"`).toBeDefined();
  return cellsOf(row!);
}

function cellsOf(line: string): string[] {
  return line
    .slice(1, -1)
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());
}

describe('RESULTS.md writer', () => {
  it('names the machine, the date, the load seen and the totals', () => {
    const md = renderResultsMd(sitting());
    expect(rowCells(md, 'CPU')).toEqual(['CPU', 'Test CPU @ 2.0GHz, 2 cores']);
    expect(rowCells(md, 'RAM')).toEqual(['RAM', '23.4 GiB']);
    expect(rowCells(md, 'Node')).toEqual(['Node', 'v20.20.0']);
    expect(rowCells(md, 'OS')).toEqual(['OS', 'Debian GNU/Linux 12 (bookworm), kernel 6.1.0']);
    expect(md).toContain('2026-12-07 19:30:00 UTC');
    expect(md).toContain('in 12.6 min');
    expect(rowCells(md, 'Other load before each bench')[1]).toBe('0.03–0.40 of 2 cores');
    expect(rowCells(md, 'Other load during measured runs (as the benches measured it)')[1]).toBe(
      '0.05–0.05 cores',
    );
    expect(md).toContain(
      '**1 targets met, 2 missed**, 1 figures for information; 1 bench(es) gave no figures',
    );
    expect(md).not.toContain('Quick smoke run');
  });

  it('writes one row per figure: target with its issue, median with range, reference, verdict', () => {
    const md = renderResultsMd(sitting());
    expect(md).toContain('## CA issuance (`npm run bench:ca`)');
    expect(rowCells(md, 'what')).toEqual([
      'what',
      'target (source)',
      'measured: median (range)',
      'reference, same run',
      'verdict',
    ]);
    expect(rowCells(md, 'X.509-SVID issuance')).toEqual([
      'X.509-SVID issuance',
      '≥ 5,000/s (issue 2)',
      '5,300/s (5,100/s–5,500/s)',
      'raw sign+verify: 11,400/s',
      'met',
    ]);
    // A pipe in a name would split the cell: it is escaped.
    expect(rowCells(md, 'ratio \\| with a pipe')).toEqual([
      'ratio \\| with a pipe',
      '≥ 40% (issue 2)',
      '38.0%',
      '',
      '**missed**',
    ]);
    expect(rowCells(md, 'per CPU-second')).toEqual(['per CPU-second', '', '5,400/s', '', 'info']);
    expect(md).toContain('- wrk 50 connections');
  });

  it('links the plot beside the bench that produced curves, and reports a failed bench', () => {
    const md = renderResultsMd(sitting());
    expect(md).toMatch(
      /## Sidecar proxy[^#]*!\[Latency percentiles against request rate: Sigil pair\]\(latency-vs-rate\.svg\)/,
    );
    expect(md).toContain('No figures: exited with 2 and wrote no figures');
    expect(rowCells(md, 'SVID rotation under load')).toEqual([
      'SVID rotation under load',
      '40 s',
      '0.40 cores (failed)',
    ]);
    expect(renderResultsMd(sitting({ plotFile: undefined }))).not.toContain('latency-vs-rate.svg');
  });

  it('pads each table to aligned columns, as the formatter the lint runs writes them', () => {
    const md = renderResultsMd(sitting());
    // Runs of consecutive lines starting with "|".
    const tables: string[][] = [];
    let current: string[] = [];
    for (const line of md.split('\n')) {
      if (line.startsWith('|')) current.push(line);
      else if (current.length > 0) {
        tables.push(current);
        current = [];
      }
    }
    expect(tables.length).toBe(4);
    for (const rows of tables) {
      const t = rows.join('\n');
      // Code points, as an editor counts "≥" or "µ".
      const widths = new Set(rows.map((r) => [...r].length));
      expect(widths.size, t).toBe(1);
      expect(rows[1]).toMatch(/^\| -{3,}( \| -{3,})* \|$/);
    }
  });

  it('marks a quick run as not to be kept', () => {
    const md = renderResultsMd(sitting({ quick: true }));
    expect(md).toContain('**Quick smoke run**');
    expect(md).toContain('`npm run bench -- --quick`');
  });

  it('judges only figures with a target and a result', () => {
    expect(verdictOf({ name: 'a', value: '1', target: '≤ 2', pass: true })).toBe('met');
    expect(verdictOf({ name: 'a', value: '3', target: '≤ 2', pass: false })).toBe('missed');
    expect(verdictOf({ name: 'a', value: '3' })).toBe('info');
    expect(verdictOf({ name: 'a', value: '3', pass: false })).toBe('info');
  });
});

/** Minimal XML well-formedness: balanced tags, quoted attributes, escaped text. */
function checkWellFormed(xml: string): void {
  const stack: string[] = [];
  const tokens = xml.split(/(<[^>]*>)/);
  for (const token of tokens) {
    if (token.startsWith('<')) {
      if (token.startsWith('<?') || token.startsWith('<!--')) continue;
      const close = /^<\/([\w:-]+)\s*>$/.exec(token);
      if (close) {
        expect(stack.pop(), `closing ${token}`).toBe(close[1]);
        continue;
      }
      const open = /^<([\w:-]+)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>$/.exec(token);
      expect(open, `malformed tag ${token}`).not.toBeNull();
      if (open![3] !== '/') stack.push(open![1]!);
    } else {
      expect(token, 'raw < in text').not.toContain('<');
      expect(/&(?!(amp|lt|gt|quot|apos);)/.test(token), `unescaped & in "${token}"`).toBe(false);
    }
  }
  expect(stack).toEqual([]);
}

const curve = (name: string, base: number, kneeAt: number): LatencyCurve => ({
  name,
  points: [250, 500, 1_000, 2_000, 4_000, 8_000]
    .filter((rate) => rate <= kneeAt)
    .map((rate) => ({
      ratePerS: rate,
      achievedPerS: rate === kneeAt ? rate * 0.6 : rate,
      p50Ms: base * (1 + rate / 2_000),
      p99Ms: base * 3 * (1 + rate / 1_000),
      errors: 0,
    })),
});

interface Placed {
  readonly series: string;
  readonly percentile: string;
  readonly rate: number;
  readonly ms: number;
  readonly cx: number;
  readonly cy: number;
  readonly hollow: boolean;
}

function placedPoints(svg: string): Placed[] {
  const placed: Placed[] = [];
  for (const group of svg.matchAll(/<g class="series" data-name="([^"]*)"[^>]*>([\s\S]*?)<\/g>/g)) {
    for (const c of group[2]!.matchAll(/<circle ([^>]*)\/>/g)) {
      const attr = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(c[1]!)?.[1];
      placed.push({
        series: group[1]!,
        percentile: attr('data-percentile')!,
        rate: Number(attr('data-rate')),
        ms: Number(attr('data-ms')),
        cx: Number(attr('cx')),
        cy: Number(attr('cy')),
        hollow: attr('fill') === '#ffffff',
      });
    }
  }
  return placed;
}

describe('latency-vs-rate SVG writer', () => {
  const curves = [
    curve('Sigil pair', 0.8, 8_000),
    curve('HAProxy pair', 0.4, 16_000),
    curve('direct & app', 0.1, 16_000),
  ];
  const svg = renderLatencySvg(curves, 'Latency <HTTP/1.1>');

  it('is well-formed XML with a title', () => {
    checkWellFormed(svg);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain('<title>Latency &lt;HTTP/1.1&gt;</title>');
  });

  it('has both axes, with round tick labels and units', () => {
    expect(svg).toContain('data-axis="x"');
    expect(svg).toContain('data-axis="y"');
    expect(svg).toContain('offered rate (requests/s, log scale)');
    expect(svg).toContain('latency (ms, log scale)');
    const xTicks = [...svg.matchAll(/>(\d+k?)<\/text>/g)].map((m) => m[1]);
    expect(xTicks).toEqual(expect.arrayContaining(['1k', '2k', '5k']));
  });

  it('draws three series, each with a p50 and a dashed p99 line, and a legend naming them', () => {
    const names = [...svg.matchAll(/<g class="series" data-name="([^"]*)"/g)].map((m) => m[1]);
    expect(names).toEqual(['Sigil pair', 'HAProxy pair', 'direct &amp; app']);
    expect(svg.match(/<polyline data-percentile="p50"/g)).toHaveLength(3);
    expect(svg.match(/<polyline data-percentile="p99"[^>]*stroke-dasharray/g)).toHaveLength(3);
    const colours = [...svg.matchAll(/<g class="series"[^>]* stroke="(#[0-9a-f]{6})"/g)].map((m) => m[1]);
    expect(new Set(colours).size).toBe(3);
    for (const name of ['Sigil pair', 'HAProxy pair', 'direct &amp; app'])
      expect(svg).toMatch(new RegExp(`<g class="legend"[\\s\\S]*>${name}</text>`));
  });

  it('places values monotonically: a higher rate further right, a higher latency further up', () => {
    const placed = placedPoints(svg);
    expect(placed).toHaveLength(2 * (6 + 6 + 6));
    for (let i = 0; i < placed.length; i++) {
      for (let j = 0; j < placed.length; j++) {
        const a = placed[i]!;
        const b = placed[j]!;
        if (a.rate < b.rate) expect(a.cx).toBeLessThan(b.cx);
        if (a.rate === b.rate) expect(a.cx).toBe(b.cx);
        // Pixels are rounded to 0.1: values within a few percent may share a row.
        if (a.ms < b.ms) expect(a.cy).toBeGreaterThanOrEqual(b.cy);
        if (a.ms * 1.05 < b.ms) expect(a.cy).toBeGreaterThan(b.cy);
      }
    }
    for (const p of placed) {
      expect(p.cx).toBeGreaterThanOrEqual(70);
      expect(p.cx).toBeLessThanOrEqual(760 - 190);
      expect(p.cy).toBeGreaterThanOrEqual(40);
      expect(p.cy).toBeLessThanOrEqual(460 - 60);
    }
  });

  it('draws a saturated point hollow', () => {
    const knee = placedPoints(svg).filter((p) => p.series === 'Sigil pair' && p.rate === 8_000);
    expect(knee.map((p) => p.hollow)).toEqual([true, true]);
    const light = placedPoints(svg).filter((p) => p.series === 'Sigil pair' && p.rate === 250);
    expect(light.map((p) => p.hollow)).toEqual([false, false]);
  });

  it('leaves out latencies a log axis cannot show, and still writes a document for no points', () => {
    const odd = renderLatencySvg(
      [{ name: 'x', points: [{ ratePerS: 500, achievedPerS: 500, p50Ms: Number.NaN, p99Ms: 2, errors: 0 }] }],
      't',
    );
    checkWellFormed(odd);
    expect(placedPoints(odd).map((p) => p.percentile)).toEqual(['p99']);
    checkWellFormed(renderLatencySvg([], 'empty'));
  });
});

describe('results hand-over and the sweep rule', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('writes figures only when --results names a file, and reads them back', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sigil-bench-results-'));
    dirs.push(dir);
    const file = path.join(dir, 'ca.json');
    const results = {
      bench: 'ca',
      figures: [{ name: 'rate', value: '5,000/s', target: '≥ 5,000/s', pass: true }],
    };
    expect(resultsPathOf(['--quick'])).toBeUndefined();
    reportResults(['--quick'], results);
    expect(() => readResults(file)).toThrow();
    reportResults(['--results', file], results);
    expect(readResults(file)).toEqual(results);
    expect(() => resultsPathOf(['--results'])).toThrow('--results: expected a file path');
  });

  it('refuses a file that is not a results file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sigil-bench-results-'));
    dirs.push(dir);
    const file = path.join(dir, 'other.json');
    reportResults(['--results', file], { figures: [] } as never);
    expect(() => readResults(file)).toThrow('not a bench results file');
  });

  it('formats a range only over two or more finite values', () => {
    const f = (v: number) => `${v} ms`;
    expect(rangeOf([3, 1, 2], f)).toBe('1 ms–3 ms');
    expect(rangeOf([3], f)).toBeUndefined();
    expect(rangeOf([3, Number.NaN], f)).toBeUndefined();
  });

  it('calls a rate saturated when under 90% is answered or any request fails', () => {
    const load = (completed: number, errors: number, elapsedMs = 3_000) => ({
      type: 'done' as const,
      sent: 3_000,
      completed,
      errors,
      firstError: null,
      dropped: 0,
      elapsedMs,
      p50Ms: 1,
      p90Ms: 2,
      p99Ms: 3,
      maxMs: 4,
      meanMs: 1,
    });
    expect(keepsUp(pointOf(1_000, 3, load(3_000, 0)))).toBe(true);
    expect(keepsUp(pointOf(1_000, 3, load(2_600, 0)))).toBe(false);
    expect(keepsUp(pointOf(1_000, 3, load(3_000, 1)))).toBe(false);
    // A drain past the measured phase counts against the rate answered.
    expect(pointOf(1_000, 3, load(3_000, 0, 6_000)).achievedPerS).toBe(500);
  });
});

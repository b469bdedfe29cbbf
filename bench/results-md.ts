// bench/RESULTS.md from one `npm run bench` sitting: the machine, the load seen, then per bench a
// table of figures (target and its source issue, median with range, the reference measured in the
// same run, verdict), the latency plot and each step's duration. Pure: the sitting in, Markdown out;
// bench/all.ts gathers the sitting and writes the file.
import type { BenchResults, Figure } from './results.js';

export interface Machine {
  readonly cpuModel: string;
  readonly cores: number;
  readonly ramGiB: number;
  readonly node: string;
  readonly os: string;
}

export interface StepOutcome {
  readonly title: string;
  /** The command that runs this step alone. */
  readonly command: string;
  readonly durationS: number;
  /** Cores' worth of CPU other processes used just before the step (bench/all.ts's quiet check). */
  readonly loadBefore: number;
  readonly results?: BenchResults;
  /** Why the step gave no figures (it failed or timed out). */
  readonly error?: string;
}

export interface Sitting {
  readonly startedIso: string;
  readonly quick: boolean;
  readonly durationS: number;
  readonly machine: Machine;
  readonly steps: readonly StepOutcome[];
  /** The plot's file name, relative to RESULTS.md, when the sweep produced one. */
  readonly plotFile?: string;
}

export type Verdict = 'met' | 'missed' | 'info';

export function verdictOf(figure: Figure): Verdict {
  if (figure.pass === undefined || figure.target === undefined) return 'info';
  return figure.pass ? 'met' : 'missed';
}

/** A table cell: pipes and line breaks would end the cell or the row; edge spaces are not kept. */
function cell(text: string | undefined): string {
  return (text ?? '').replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ').trim();
}

const cores = (n: number) => `${Math.max(0, n).toFixed(2)}`;

/** Characters as an editor counts them (code points), not UTF-16 units. */
const widthOf = (text: string) => [...text].length;

/**
 * A Markdown table with its columns padded to one width, as the repository's formatter (biome)
 * writes them: the file passes `npm run lint` as generated, whoever regenerates it.
 */
function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string[] {
  const all = [header, ...rows].map((row) => row.map(cell));
  const widths = header.map((_, i) => Math.max(3, ...all.map((row) => widthOf(row[i] ?? ''))));
  const line = (row: readonly string[]) =>
    `| ${row.map((text, i) => text + ' '.repeat(widths[i]! - widthOf(text))).join(' | ')} |`;
  return [line(all[0]!), line(widths.map((w) => '-'.repeat(w))), ...all.slice(1).map(line)];
}

function figureRow(f: Figure): string[] {
  const target = f.target === undefined ? '' : `${f.target}${f.source ? ` (${f.source})` : ''}`;
  const measured = `${f.value}${f.range ? ` (${f.range})` : ''}${f.repeats ? `; ${f.repeats}` : ''}`;
  const verdict = verdictOf(f);
  return [f.name, target, measured, f.reference ?? '', verdict === 'missed' ? '**missed**' : verdict];
}

/** The whole file. */
export function renderResultsMd(s: Sitting): string {
  const lines: string[] = [];
  const figures = s.steps.flatMap((step) => step.results?.figures ?? []);
  const counts = { met: 0, missed: 0, info: 0 };
  for (const f of figures) counts[verdictOf(f)]++;
  const failedSteps = s.steps.filter((step) => step.error !== undefined);
  const loadsBefore = s.steps.map((step) => step.loadBefore);
  const during = s.steps
    .map((step) => step.results?.backgroundCores)
    .filter((v): v is number => v !== undefined && Number.isFinite(v));

  lines.push('# Sigil benchmarks', '');
  if (s.quick) {
    lines.push(
      '> **Quick smoke run** (`npm run bench -- --quick`): short runs and single repeats, to prove the',
      '> pipeline works end to end. These figures are not comparable with a full run; replace this file',
      '> with the output of `npm run bench` on a quiet machine.',
      '',
    );
  }
  lines.push(
    `Written by \`npm run bench${s.quick ? ' -- --quick' : ''}\` on ${s.startedIso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}, ` +
      `in ${(s.durationS / 60).toFixed(1)} min. Each bench can also be run alone (the command is in its heading).`,
    '',
    `**${counts.met} targets met, ${counts.missed} missed**, ${counts.info} figures for information` +
      (failedSteps.length > 0 ? `; ${failedSteps.length} bench(es) gave no figures (see below)` : '') +
      '. Targets are those of the issues named beside them, never lowered; a figure without a target is there to read the others by.',
    '',
    '## Machine',
    '',
    ...table(
      ['', ''],
      [
        ['CPU', `${s.machine.cpuModel}, ${s.machine.cores} cores`],
        ['RAM', `${s.machine.ramGiB.toFixed(1)} GiB`],
        ['Node', s.machine.node],
        ['OS', s.machine.os],
        [
          'Other load before each bench',
          `${loadsBefore.length > 0 ? `${cores(Math.min(...loadsBefore))}–${cores(Math.max(...loadsBefore))}` : '–'} of ${s.machine.cores} cores`,
        ],
        [
          'Other load during measured runs (as the benches measured it)',
          during.length > 0
            ? `${cores(Math.min(...during))}–${cores(Math.max(...during))} cores`
            : 'not measured',
        ],
      ],
    ),
    '',
    'Medians over the repeats of a run, with the range (lowest–highest) in brackets. Ratios are taken',
    'within a repeat (Sigil ÷ HAProxy of the same repeat), because only ratios carry from one sitting or',
    'machine to another. Where a figure says "valid N of M", it is over the repeats taken with little other',
    'load on the machine only (the others were taken again, or left out as invalid), with the load they saw.',
    '',
  );
  for (const step of s.steps) {
    lines.push(`## ${step.title} (\`${step.command}\`)`, '');
    if (step.error !== undefined) {
      lines.push(`No figures: ${cell(step.error)}`, '');
      continue;
    }
    const results = step.results!;
    lines.push(
      ...table(
        ['what', 'target (source)', 'measured: median (range)', 'reference, same run', 'verdict'],
        results.figures.map(figureRow),
      ),
      '',
    );
    if (results.curves && results.curves.length > 0 && s.plotFile) {
      lines.push(
        `![Latency percentiles against request rate: ${results.curves.map((c) => c.name).join(', ')}](${s.plotFile})`,
        '',
        `Latency (p50 solid, p99 dashed) against a fixed offered rate, open loop, for ${results.curves.map((c) => c.name).join(', ')}. ` +
          'A hollow point is a run the path could not keep up with (answered under 90% of the rate).',
        '',
      );
    }
    for (const note of results.notes ?? []) lines.push(`- ${note}`);
    if ((results.notes ?? []).length > 0) lines.push('');
  }
  lines.push(
    '## Steps',
    '',
    ...table(
      ['bench', 'took', 'other load before'],
      s.steps.map((step) => [
        step.title,
        `${step.durationS.toFixed(0)} s`,
        `${cores(step.loadBefore)} cores${step.error !== undefined ? ' (failed)' : ''}`,
      ]),
    ),
    '',
  );
  return lines.join('\n');
}

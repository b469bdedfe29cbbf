// The report of `npm run bench:proxy`: statistics, number formats, aligned tables and target checks.

import { availableParallelism } from 'node:os';
import type { Figure } from './results.js';

/** Failed requests through Sigil above this share of all its requests in a scenario fail the bench. */
export const MAX_ERROR_SHARE = 0.001;

export function log(line = ''): void {
  process.stdout.write(`${line}\n`);
}

export function median(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = Math.floor(finite.length / 2);
  return finite.length % 2 === 1 ? finite[mid]! : (finite[mid - 1]! + finite[mid]!) / 2;
}

export function fmt(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return '–';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function fmtRatio(values: readonly number[]): { median: string; spread: string } {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return { median: '–', spread: '' };
  return {
    median: `${median(finite).toFixed(2)}x`,
    spread: finite.length > 1 ? `${Math.min(...finite).toFixed(2)}–${Math.max(...finite).toFixed(2)}` : '',
  };
}

/** A figure with a target: a row of the verdict table, and of bench/RESULTS.md (results.ts). */
export interface Check extends Figure {
  readonly target: string;
  readonly pass: boolean;
}

export class Table {
  private readonly rows: string[][] = [];

  constructor(private readonly header: readonly string[]) {}

  add(row: readonly string[]): void {
    this.rows.push([...row]);
  }

  print(): void {
    const all = [this.header, ...this.rows];
    const widths = this.header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
    const line = (row: readonly string[]) =>
      row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
    log(line(this.header));
    log(widths.map((w) => '-'.repeat(w)).join('  '));
    for (const row of this.rows) log(line(row));
  }
}

/** What else ran on the machine while figures were measured (startMachineLoad), as the bench prints it. */
export function machineLoadLine(backgroundCores: number): string {
  return (
    `other load on the machine during the measured runs: ${Math.max(0, backgroundCores).toFixed(2)} of ${availableParallelism()} cores` +
    (backgroundCores > 0.2
      ? ' (figures are noisier than usual; ratios within a repeat still compare like with like)'
      : '')
  );
}

/** The verdict table: one row per check, PASS or FAIL; returns how many failed. */
export function printVerdicts(checks: readonly Check[]): number {
  const verdicts = new Table(['target', 'value', 'limit', 'repeats', '']);
  for (const c of checks)
    verdicts.add([c.name, c.value, c.target, c.repeats ?? '', c.pass ? 'PASS' : 'FAIL']);
  verdicts.print();
  return checks.filter((c) => !c.pass).length;
}

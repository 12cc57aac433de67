/**
 * The performance targets, each a ratio to a floor measured in the same run (issue 17): sections record what
 * they measured here, and `npm run bench` prints them together, next to their targets, and puts the same table
 * at the top of docs/BENCHMARKS.md.
 */
export interface TargetRow {
  /** What is compared, e.g. "server CPU per handshake ÷ its crypto floor". */
  figure: string;
  /** The measured ratio (median of the trials). */
  ratio: number;
  /** Each trial's ratio. */
  trials: number[];
  /** The target: ratio ≤ max. */
  max: number;
  /** The two absolute figures the ratio is made of, for the reader. */
  detail: string;
  /** Where the report explains it (section title). */
  section: string;
  /** When missed: what bounds it, measured (one sentence; the section has the numbers). */
  bound?: string;
  /** '%' for a share (ratio 0.012 shows as 1.2 %); default '×'. */
  unit?: '×' | '%';
}

/** A ratio or share as the row's unit shows it. */
export function show(r: TargetRow, v: number): string {
  return r.unit === '%' ? `${(v * 100).toFixed(2)} %` : `${v.toFixed(2)}×`;
}

export const targets: TargetRow[] = [];

export function recordTarget(row: TargetRow): void {
  targets.push(row);
}

export const met = (r: TargetRow): boolean => r.ratio <= r.max;

/** The summary table (Markdown). */
export function targetsTable(): string {
  const rows = targets.map((r) => `| ${r.figure} | **${show(r, r.ratio)}** | ${r.trials.map((t) => show(r, t)).join(' / ')} | ≤ ${show(r, r.max)} → ${met(r) ? 'met' : '**missed**'} | ${r.detail} | ${met(r) ? '—' : (r.bound ?? '')} |`);
  return `| figure | ratio (median) | per trial | target | measured | what bounds it (missed targets; numbers in the section) |
|---|---|---|---|---|---|
${rows.join('\n')}`;
}

/** The same, as plain lines for the terminal. */
export function targetsText(): string {
  const w = Math.max(...targets.map((r) => r.figure.length));
  return targets.map((r) => `${r.figure.padEnd(w)}  ${show(r, r.ratio).padStart(7)}  (trials ${r.trials.map((t) => show(r, t)).join(', ')})  target ≤ ${show(r, r.max)} → ${met(r) ? 'met' : 'MISSED'}   ${r.detail}`).join('\n');
}


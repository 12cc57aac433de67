/**
 * A small, strict validator of the Prometheus text exposition format 0.0.4, for the acceptance tests.
 * Checks: HELP/TYPE syntax (each at most once per family, TYPE before the family's samples), metric and
 * label name syntax, label value escapes, numeric values (Go ParseFloat syntax: incl. +Inf/-Inf/NaN) and optional timestamps,
 * every sample belongs to a declared family whose samples are contiguous, no duplicate series, counters
 * named `*_total` with non-negative values, histogram buckets (le ascending, cumulative, `+Inf` bucket =
 * `_count`, `_sum` present) and summaries (quantile label, `_sum`, `_count`). Throws on the first problem
 * with its line number; returns family name → type.
 */

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const FLOAT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const TIMESTAMP = /^-?\d+$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

interface Sample {
  name: string;
  labels: Map<string, string>;
  value: number;
  line: number;
}

/**
 * The format defines values as Go's strconv.ParseFloat reads them: decimal floats, and the special values
 * NaN, [+-]Inf and [+-]Infinity matched without regard to case (prom-client writes NaN as `Nan`, which
 * Prometheus accepts). Hexadecimal floats are not accepted here.
 */
function parseValue(s: string): number | null {
  const special = /^([+-]?)(inf|infinity|nan)$/i.exec(s);
  if (special) {
    if ((special[2] as string).toLowerCase() === 'nan') return special[1] === '' ? NaN : null;
    return special[1] === '-' ? -Infinity : Infinity;
  }
  return FLOAT.test(s) ? Number(s) : null;
}

/** Parses `name{a="b",...} value [ts]`; throws a message on bad syntax. */
function parseSample(line: string, lineNo: number): Sample {
  const fail = (why: string): never => {
    throw new Error(`line ${lineNo}: ${why}: ${JSON.stringify(line)}`);
  };
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (!nameMatch) return fail('bad metric name');
  const name = nameMatch[0];
  let i = name.length;
  const labels = new Map<string, string>();
  if (line[i] === '{') {
    i++;
    for (;;) {
      if (line[i] === '}') {
        i++;
        break;
      }
      const ln = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
      if (!ln) return fail('bad label name');
      const labelName = ln[0];
      if (labelName.startsWith('__')) fail(`reserved label name ${labelName}`);
      if (labels.has(labelName)) fail(`duplicate label ${labelName}`);
      i += labelName.length;
      if (line[i] !== '=' || line[i + 1] !== '"') fail('expected ="');
      i += 2;
      let value = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) return fail('unterminated label value');
        if (c === '"') {
          i++;
          break;
        }
        if (c === '\\') {
          const n = line[i + 1];
          if (n === '\\') value += '\\';
          else if (n === '"') value += '"';
          else if (n === 'n') value += '\n';
          else fail(`bad escape \\${n ?? ''} in label value`);
          i += 2;
          continue;
        }
        value += c;
        i++;
      }
      labels.set(labelName, value);
      if (line[i] === ',') {
        i++;
        continue;
      }
      if (line[i] === '}') {
        i++;
        break;
      }
      fail('expected , or } after a label');
    }
  }
  if (line[i] !== ' ') fail('expected a space before the value');
  const rest = line.slice(i + 1).split(' ');
  if (rest.length < 1 || rest.length > 2 || rest.some((p) => p === '')) fail('expected "value [timestamp]"');
  const value = parseValue(rest[0] as string);
  if (value === null) fail(`bad value ${rest[0] as string}`);
  if (rest.length === 2 && !TIMESTAMP.test(rest[1] as string)) fail(`bad timestamp ${rest[1] as string}`);
  return { name, labels, value: value as number, line: lineNo };
}

function labelKey(labels: Map<string, string>, without?: string): string {
  return [...labels.entries()]
    .filter(([k]) => k !== without)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(',');
}

/** The family a sample name belongs to, given the declared families. */
function familyOf(name: string, types: Map<string, MetricType>): string | null {
  if (types.has(name)) {
    const t = types.get(name);
    if (t !== 'histogram' || !name.endsWith('_bucket')) return name;
  }
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const base = name.slice(0, -suffix.length);
    const t = types.get(base);
    if (t === 'histogram' || (t === 'summary' && suffix !== '_bucket')) return base;
  }
  return null;
}

export function validateExposition(text: string): Map<string, MetricType> {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const types = new Map<string, MetricType>();
  const helps = new Set<string>();
  const samples = new Map<string, Sample[]>();
  const seriesSeen = new Set<string>();
  const finished = new Set<string>();
  let current: string | null = null;
  const lines = text.split('\n');
  lines.pop(); // after the final newline
  lines.forEach((line, idx) => {
    const lineNo = idx + 1;
    const fail = (why: string): never => {
      throw new Error(`line ${lineNo}: ${why}: ${JSON.stringify(line)}`);
    };
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!m) {
        if (/^#\s*(HELP|TYPE)\b/.test(line)) fail('malformed HELP/TYPE line');
        return; // plain comment
      }
      const [, kind, name, rest] = m as unknown as [string, string, string, string | undefined];
      if (!METRIC_NAME.test(name)) fail(`bad metric name ${name}`);
      if (samples.has(name)) fail(`${kind} for ${name} after its samples`);
      if (kind === 'HELP') {
        if (helps.has(name)) fail(`second HELP for ${name}`);
        helps.add(name);
        if (rest !== undefined && /\\(?![\\n])/.test(rest)) fail('bad escape in HELP text');
      } else {
        if (types.has(name)) fail(`second TYPE for ${name}`);
        if (rest === undefined || !TYPES.has(rest)) fail(`unknown type ${rest ?? ''}`);
        types.set(name, rest as MetricType);
      }
      return;
    }
    const s = parseSample(line, lineNo);
    const family = familyOf(s.name, types);
    if (family === null) return fail(`sample ${s.name} belongs to no declared family (missing TYPE)`);
    if (current !== family) {
      if (current !== null) finished.add(current);
      if (finished.has(family)) fail(`samples of ${family} are not contiguous`);
      current = family;
    }
    const series = `${s.name}{${labelKey(s.labels)}}`;
    if (seriesSeen.has(series)) fail(`duplicate series ${series}`);
    seriesSeen.add(series);
    const list = samples.get(family) ?? [];
    list.push(s);
    samples.set(family, list);
  });

  for (const [family, type] of types) {
    const list = samples.get(family) ?? [];
    const fail = (why: string, line?: number): never => {
      throw new Error(`${line !== undefined ? `line ${line}: ` : ''}${family} (${type}): ${why}`);
    };
    switch (type) {
      case 'counter':
        if (!family.endsWith('_total')) fail('counter names must end in _total');
        for (const s of list) {
          if (s.name !== family) fail(`sample ${s.name} in a counter family`, s.line);
          if (Number.isNaN(s.value) || s.value < 0) fail(`counter value ${s.value}`, s.line);
        }
        break;
      case 'gauge':
      case 'untyped':
        for (const s of list) if (s.name !== family) fail(`sample ${s.name} in a ${type} family`, s.line);
        break;
      case 'summary':
        for (const s of list) {
          if (s.name === family && !s.labels.has('quantile')) fail('summary sample without a quantile label', s.line);
          if (s.name !== family && s.labels.has('quantile')) fail(`${s.name} must not carry a quantile label`, s.line);
        }
        break;
      case 'histogram': {
        const groups = new Map<string, { buckets: Sample[]; sum: Sample | null; count: Sample | null }>();
        for (const s of list) {
          const key = labelKey(s.labels, s.name === `${family}_bucket` ? 'le' : undefined);
          const g = groups.get(key) ?? { buckets: [], sum: null, count: null };
          groups.set(key, g);
          if (s.name === `${family}_bucket`) {
            if (!s.labels.has('le')) fail('bucket without le', s.line);
            g.buckets.push(s);
          } else if (s.name === `${family}_sum`) {
            if (s.labels.has('le')) fail('_sum with an le label', s.line);
            g.sum = s;
          } else if (s.name === `${family}_count`) {
            if (s.labels.has('le')) fail('_count with an le label', s.line);
            g.count = s;
          } else fail(`sample ${s.name} in a histogram family`, s.line);
        }
        for (const [key, g] of groups) {
          if (g.buckets.length === 0) fail(`series {${key}} has no buckets`);
          if (!g.sum || !g.count) return fail(`series {${key}} lacks _sum or _count`);
          let prevLe = -Infinity;
          let prevCount = 0;
          for (const b of g.buckets) {
            const le = parseValue(b.labels.get('le') ?? '');
            if (le === null || Number.isNaN(le)) fail(`bad le ${b.labels.get('le') ?? ''}`, b.line);
            if ((le as number) <= prevLe) fail('buckets not in increasing le order', b.line);
            if (Number.isNaN(b.value) || b.value < prevCount) fail('bucket counts are not cumulative', b.line);
            prevLe = le as number;
            prevCount = b.value;
          }
          const last = g.buckets[g.buckets.length - 1] as Sample;
          if (last.labels.get('le') !== '+Inf') fail(`series {${key}} has no le="+Inf" bucket`, last.line);
          if (last.value !== g.count.value) fail(`+Inf bucket ${last.value} != _count ${g.count.value}`, g.count.line);
          if (g.count.value < 0 || Number.isNaN(g.count.value)) fail('bad _count', g.count.line);
        }
        break;
      }
    }
  }
  return types;
}

/**
 * A strict parser of the Prometheus text exposition format 0.0.4, for tests: every line must be a
 * HELP, TYPE or sample line; names and labels must be well formed, label values properly escaped,
 * values numbers; each sample must belong to a family declared by TYPE before it; no series may
 * appear twice; histogram buckets must be cumulative and end at +Inf with the family's _count.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string | null;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const SUFFIXES: Record<Family['type'], string[]> = {
  counter: [''],
  gauge: [''],
  untyped: [''],
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['', '_sum', '_count'],
};

export function parsePrometheusText(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) {
        if (/^# (HELP|TYPE)\b/.test(line)) throw new Error(`malformed ${where}`);
        return; // a plain comment
      }
      const [, keyword, name, rest] = m;
      if (!METRIC_NAME.test(name)) throw new Error(`bad metric name in ${where}`);
      const family = families.get(name) ?? { name, type: 'untyped' as const, help: null, samples: [] };
      if (keyword === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`bad type in ${where}`);
        if (family.samples.length) throw new Error(`TYPE after samples in ${where}`);
        family.type = rest as Family['type'];
      } else {
        if (family.help !== null) throw new Error(`second HELP in ${where}`);
        family.help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      }
      families.set(name, family);
      return;
    }
    const sample = parseSample(line, where);
    const family = familyOf(families, sample.name);
    if (!family) throw new Error(`sample of an undeclared family in ${where}`);
    const key = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (seen.has(key)) throw new Error(`duplicate series in ${where}`);
    seen.add(key);
    if (family.type === 'counter' && !(sample.value >= 0)) throw new Error(`negative counter in ${where}`);
    family.samples.push(sample);
  });
  for (const family of families.values()) if (family.type === 'histogram') checkHistogram(family);
  return families;
}

function familyOf(families: Map<string, Family>, sampleName: string): Family | undefined {
  for (const [name, family] of families) {
    for (const suffix of SUFFIXES[family.type]) if (sampleName === name + suffix) return family;
  }
  return undefined;
}

function parseSample(line: string, where: string): Sample {
  const nameMatch = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
  if (!nameMatch) throw new Error(`bad sample name in ${where}`);
  const name = nameMatch[1];
  let pos = name.length;
  const labels: Record<string, string> = {};
  if (line[pos] === '{') {
    pos++;
    while (line[pos] !== '}') {
      const labelMatch = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(pos));
      if (!labelMatch || !LABEL_NAME.test(labelMatch[1])) throw new Error(`bad label at ${pos} in ${where}`);
      pos += labelMatch[0].length;
      let value = '';
      for (;;) {
        const c = line[pos];
        if (c === undefined) throw new Error(`unterminated label value in ${where}`);
        if (c === '"') break;
        if (c === '\\') {
          const next = line[pos + 1];
          if (next === 'n') value += '\n';
          else if (next === '\\' || next === '"') value += next;
          else throw new Error(`bad escape in ${where}`);
          pos += 2;
          continue;
        }
        value += c;
        pos++;
      }
      pos++;
      if (labelMatch[1] in labels) throw new Error(`duplicate label in ${where}`);
      labels[labelMatch[1]] = value;
      if (line[pos] === ',') pos++;
      else if (line[pos] !== '}') throw new Error(`expected , or } at ${pos} in ${where}`);
    }
    pos++;
  }
  const rest = line.slice(pos);
  const valueMatch = /^ (\S+)(?: (-?\d+))?$/.exec(rest);
  if (!valueMatch) throw new Error(`bad value part in ${where}`);
  return { name, labels, value: parseValue(valueMatch[1], where) };
}

function parseValue(text: string, where: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`bad number ${text} in ${where}`);
  return Number(text);
}

function checkHistogram(family: Family): void {
  const series = new Map<string, { buckets: { le: number; value: number }[]; count?: number }>();
  const keyOf = (labels: Record<string, string>) => JSON.stringify(Object.entries(labels).filter(([k]) => k !== 'le').sort());
  for (const s of family.samples) {
    const entry = series.get(keyOf(s.labels)) ?? { buckets: [] };
    series.set(keyOf(s.labels), entry);
    if (s.name.endsWith('_bucket')) {
      if (!('le' in s.labels)) throw new Error(`${family.name}: bucket without le`);
      entry.buckets.push({ le: parseValue(s.labels.le, family.name), value: s.value });
    } else if (s.name.endsWith('_count')) entry.count = s.value;
  }
  for (const [key, entry] of series) {
    const sorted = [...entry.buckets].sort((a, b) => a.le - b.le);
    for (let i = 1; i < sorted.length; i++) if (sorted[i].value < sorted[i - 1].value) throw new Error(`${family.name}${key}: buckets not cumulative`);
    const inf = sorted[sorted.length - 1];
    if (!inf || inf.le !== Infinity) throw new Error(`${family.name}${key}: no +Inf bucket`);
    if (entry.count !== inf.value) throw new Error(`${family.name}${key}: _count ${entry.count} differs from the +Inf bucket ${inf.value}`);
  }
}

/** The value of one series, matching every label given; undefined when absent. */
export function valueOf(families: Map<string, Family>, family: string, labels: Record<string, string> = {}, sampleName = family): number | undefined {
  const f = families.get(family);
  return f?.samples.find((s) => s.name === sampleName && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, or a benchmark's `BENCH_CPU_PROFILE`) as text:
 * the top frames by self time and by inclusive time, and self time by package (graphql, typeorm,
 * pg, express, our src/…), so that a profile can be read and pasted into the README without a
 * flame graph viewer.
 *
 *   npx ts-node --transpile-only test/bench/profile-summary.ts <file.cpuprofile> [--top 25] [--windows W.json]
 *
 * W.json, a list of [start, end] in µs of CLOCK_MONOTONIC (process.hrtime.bigint() / 1000n, the
 * clock of the profile's samples), keeps only the samples taken within them (bench:subscriptions
 * writes the fan-out windows so).
 *
 * Inclusive time counts each sample once per frame even when the frame recurses (a sample whose
 * stack holds `execute` three times adds its interval to `execute` once), so percentages add up
 * the way a flame graph shows them.
 */
import fs from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** `node_modules/<pkg>` (scoped packages included), `src/<folder>`, `node:` internals, or a V8 pseudo frame. */
export function packageOf(url: string, functionName: string): string {
  if (!url) return `(${functionName || 'anonymous'})`.replace(/^\(\((.*)\)\)$/, '($1)');
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith('node:')) return 'node internals';
  const src = url.match(/\/(src\/(?:modules|platform|app)\/[^/]+)/);
  if (src) return src[1].replace(/\.ts$/, '');
  const test = url.match(/\/(test\/[^/]+)/);
  return test ? test[1] : url.replace(/^file:\/\//, '');
}

function frameLabel(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName || '(anonymous)';
  if (!url) return name;
  const short = url.replace(/^file:\/\//, '').replace(/^.*node_modules\//, '').replace(/^.*?\/(src|test)\//, '$1/');
  return `${name} ${short}:${lineNumber + 1}`;
}

export function summarise(profile: CpuProfile, top: number, windows: [number, number][] | null = null): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const self = new Map<number, number>();
  let total = 0;
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const dt = Math.max(0, profile.timeDeltas[i] ?? 0);
    at += profile.timeDeltas[i] ?? 0;
    if (windows && !windows.some(([start, end]) => at >= start && at <= end)) return;
    self.set(id, (self.get(id) ?? 0) + dt);
    total += dt;
  });
  let idle = 0;

  const selfByLabel = new Map<string, number>();
  const selfByPackage = new Map<string, number>();
  const inclusiveByLabel = new Map<string, number>();
  for (const [id, t] of self) {
    const node = byId.get(id)!;
    if (node.callFrame.functionName === '(idle)') idle += t;
    const label = frameLabel(node);
    selfByLabel.set(label, (selfByLabel.get(label) ?? 0) + t);
    const pkg = packageOf(node.callFrame.url, node.callFrame.functionName);
    selfByPackage.set(pkg, (selfByPackage.get(pkg) ?? 0) + t);
    // Walk up once per distinct label, so that recursion is not counted twice.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = frameLabel(byId.get(cur)!);
      if (seen.has(l)) continue;
      seen.add(l);
      inclusiveByLabel.set(l, (inclusiveByLabel.get(l) ?? 0) + t);
    }
  }

  const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)} %`;
  const ms = (t: number) => `${(t / 1000).toFixed(0).padStart(7)} ms`;
  const table = (title: string, m: Map<string, number>, n: number) => {
    const rows = [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n);
    return [title, ...rows.map(([k, t]) => `  ${pct(t)} ${ms(t)}  ${k}`)].join('\n');
  };
  const skip = new Set(['(root)', '(program)', '(idle)']);
  const inclusive = new Map([...inclusiveByLabel].filter(([k]) => !skip.has(k.split(' ')[0])));
  return [
    `profile: ${(total / 1e6).toFixed(2)} s sampled${windows ? ` in ${windows.length} windows` : ''}, busy ${(100 - (100 * idle) / Math.max(total, 1)).toFixed(1)} %`,
    table('self time by package:', selfByPackage, top),
    table('top frames by self time:', selfByLabel, top),
    table('top frames by inclusive time:', inclusive, top),
  ].join('\n\n');
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const file = args.find((a, i) => !a.startsWith('--') && !['--top', '--windows'].includes(args[i - 1]));
  const topIndex = args.indexOf('--top');
  const top = topIndex >= 0 ? Number(args[topIndex + 1]) : 25;
  const windowsIndex = args.indexOf('--windows');
  if (!file) {
    console.error('usage: profile-summary.ts <file.cpuprofile> [--top N] [--windows W.json]');
    process.exit(2);
  }
  const windows = windowsIndex >= 0 ? (JSON.parse(fs.readFileSync(args[windowsIndex + 1], 'utf8')) as [number, number][]) : null;
  console.log(summarise(JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile, top, windows));
}

/**
 * CPU profiles of bench:export's downloads, and a text summary of them (top frames by self and
 * inclusive time, self time by package), so that the README can show where an export spends its
 * time without a flame graph viewer. The profiler runs through the inspector in the same process,
 * only around each download: `node --cpu-prof` would also record the seeding and the references.
 *
 * The same idea as the `read` helper's test/bench/cpu-profile.ts + profile-summary.ts (issue 14),
 * kept as its own small copy so that the branches merge without depending on each other.
 */
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';

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

/** Profiles `work`, writes `<file>.cpuprofile`, returns the summary. */
export async function profiled<T>(file: string, top: number, work: () => Promise<T>): Promise<{ result: T; summary: string }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 500 });
  await session.post('Profiler.start');
  try {
    const result = await work();
    const { profile } = await session.post('Profiler.stop');
    fs.writeFileSync(file, JSON.stringify(profile));
    return { result, summary: summarise(profile as CpuProfile, top) };
  } finally {
    session.disconnect();
  }
}

/** `node_modules/<pkg>`, `src/<area>/<folder>`, `node:` internals, or a V8 pseudo frame such as (garbage collector). */
function packageOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : `(${functionName || 'anonymous'})`;
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith('node:')) return 'node internals';
  const src = url.match(/\/(src\/(?:modules|platform|app)\/[^/]+)/);
  if (src) return src[1];
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

/** Inclusive time counts a sample once per distinct frame, so recursion is not counted twice. */
export function summarise(profile: CpuProfile, top: number): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = Math.max(0, profile.timeDeltas[i] ?? 0);
    self.set(id, (self.get(id) ?? 0) + dt);
    total += dt;
  });
  const selfByLabel = new Map<string, number>();
  const selfByPackage = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, t: number) => m.set(k, (m.get(k) ?? 0) + t);
  for (const [id, t] of self) {
    const node = byId.get(id)!;
    add(selfByLabel, frameLabel(node), t);
    add(selfByPackage, packageOf(node.callFrame.url, node.callFrame.functionName), t);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const label = frameLabel(byId.get(cur)!);
      if (seen.has(label) || ['(root)', '(program)', '(idle)'].includes(label)) continue;
      seen.add(label);
      add(inclusive, label, t);
    }
  }
  const table = (title: string, m: Map<string, number>, n: number) =>
    [title, ...[...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, t]) => `  ${((100 * t) / total).toFixed(1).padStart(5)} % ${(t / 1000).toFixed(0).padStart(6)} ms  ${k}`)].join('\n');
  return [
    `profile: ${(total / 1e6).toFixed(2)} s sampled, ${profile.samples.length} samples`,
    table('self time by package:', selfByPackage, 8),
    table('top frames by self time:', selfByLabel, top),
    table('top frames by inclusive time:', inclusive, top),
  ].join('\n');
}

if (require.main === module) {
  const file = process.argv[2];
  if (!file) throw new Error('usage: export-profile.ts <file.cpuprofile> [top]');
  console.log(summarise(JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile, Number(process.argv[3] ?? 20)));
}

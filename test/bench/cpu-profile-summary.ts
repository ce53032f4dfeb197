/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): the top frames by self time and by inclusive time
 * (a frame counted once per sample even when it recurses), and self time by package, as a share of
 * all samples, idle included so the figures say how busy the process was.
 * Usage: ts-node --transpile-only test/bench/cpu-profile-summary.ts FILE.cpuprofile [top=20] [WINDOWS.json]
 * WINDOWS.json, a list of [start, end] in µs of CLOCK_MONOTONIC (process.hrtime.bigint() / 1000n,
 * the clock of the profile's samples), keeps only the samples taken within them.
 */
import fs from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const where = (url: string) => {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const src = url.search(/\/(src|test|scripts)\//);
  return src >= 0 ? url.slice(src + 1) : url.replace(/^node:/, 'node:');
};
const label = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'} ${where(n.callFrame.url)}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
const pkg = (url: string) => {
  if (!url) return '(native/vm)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith('node:')) return 'node (core)';
  const src = /\/(src\/[^/]+\/[^/]+)/.exec(url);
  return src ? src[1] : url;
};

function main(): void {
  const [file, topArg, windowsFile] = process.argv.slice(2);
  const top = Number(topArg ?? 20);
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const windows = windowsFile ? (JSON.parse(fs.readFileSync(windowsFile, 'utf8')) as [number, number][]) : null;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const selfUs = new Map<number, number>();
  let total = 0;
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const dt = Math.max(0, profile.timeDeltas[i] ?? 0);
    at += profile.timeDeltas[i] ?? 0;
    if (windows && !windows.some(([start, end]) => at >= start && at <= end)) return;
    total += dt;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  });

  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const packages = new Map<string, number>();
  let idle = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const name = label(node);
    if (node.callFrame.functionName === '(idle)') idle += us;
    self.set(name, (self.get(name) ?? 0) + us);
    packages.set(pkg(node.callFrame.url), (packages.get(pkg(node.callFrame.url)) ?? 0) + us);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const l = label(byId.get(at)!);
      if (seen.has(l)) continue;
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + us);
    }
  }

  const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)} %`;
  const print = (title: string, map: Map<string, number>, skip: (name: string) => boolean = () => false) => {
    console.log(title);
    [...map.entries()]
      .filter(([name]) => !skip(name))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .forEach(([name, us]) => console.log(`  ${pct(us)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${name}`));
  };
  console.log(`${file}${windows ? ` (${windows.length} windows)` : ''}: ${(total / 1e6).toFixed(1)} s sampled, busy ${(100 - (100 * idle) / total).toFixed(1)} %`);
  print('self time', self);
  print('inclusive time', inclusive, (name) => /^\((root|program|idle|garbage collector)\)/.test(name));
  print('self time by package', packages);
}

main();

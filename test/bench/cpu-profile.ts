import fs from 'node:fs';
import { Session } from 'node:inspector/promises';

/**
 * A CPU profile of chosen phases of a benchmark (the timed ones, not the seeding or the reference),
 * through the inspector in the same process: `node --cpu-prof` would also record everything else.
 * Starts paused; `resume()`/`pause()` around each phase; `stop(file)` writes a `.cpuprofile`.
 */
export async function startProfile(): Promise<{ resume(): Promise<void>; pause(): Promise<void>; stop(file: string): Promise<string> }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 500 });
  const parts: unknown[] = [];
  let running = false;
  const pause = async () => {
    if (!running) return;
    const { profile } = await session.post('Profiler.stop');
    parts.push(profile);
    running = false;
  };
  return {
    async resume() {
      if (running) return;
      await session.post('Profiler.start');
      running = true;
    },
    pause,
    async stop(file: string) {
      await pause();
      session.disconnect();
      fs.writeFileSync(file, JSON.stringify(mergeProfiles(parts as Profile[])));
      return file;
    },
  };
}

interface Profile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }; children?: number[] }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Several profiles as one: node ids renumbered, the roots' children joined, samples concatenated. */
function mergeProfiles(parts: Profile[]): Profile {
  if (parts.length === 1) return parts[0];
  const merged: Profile = { nodes: [{ id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1, columnNumber: -1 }, children: [] }], startTime: parts[0]?.startTime ?? 0, endTime: 0, samples: [], timeDeltas: [] };
  let offset = 1;
  for (const p of parts) {
    const rootId = p.nodes[0].id;
    const map = new Map<number, number>();
    for (const n of p.nodes) if (n.id !== rootId) map.set(n.id, ++offset);
    for (const n of p.nodes) {
      const children = (n.children ?? []).map((c) => map.get(c)!);
      if (n.id === rootId) merged.nodes[0].children!.push(...children);
      else merged.nodes.push({ ...n, id: map.get(n.id)!, children });
    }
    merged.samples.push(...p.samples.map((s) => (s === rootId ? 1 : map.get(s)!)));
    merged.timeDeltas.push(...p.timeDeltas.map((d, i) => (i === 0 ? 0 : d)));
    merged.endTime += p.endTime - p.startTime;
  }
  merged.endTime += merged.startTime;
  return merged;
}

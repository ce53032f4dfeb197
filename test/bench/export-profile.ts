/**
 * CPU profiles of bench:export's downloads, and a text summary of them (top frames by self and
 * inclusive time, self time by package), so that the README can show where an export spends its
 * time without a flame graph viewer. The profiler runs through the inspector in the same process,
 * only around each download: `node --cpu-prof` would also record the seeding and the references.
 *
 * The summary is profile-summary.ts's.
 */
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import { CpuProfile, summarise } from './profile-summary';

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


/**
 * Execution providers and the session cache: CUDA when asked for and available, otherwise CPU with
 * one warning; one session per key, and a failed load is tried again.
 */
import { OnnxRuntime, SessionCache } from '../../src/platform/onnx';
import { setLogLevel } from '../../src/platform/logging';
import { buildReferenceSelector } from '../../src/modules/selectors/reference-selector';

const options = { intraOpThreads: 1, interOpThreads: 1, cudaDeviceId: 0 };

async function captureStderr<T>(work: () => Promise<T>): Promise<{ result: T; lines: string[] }> {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => (lines.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    return { result: await work(), lines };
  } finally {
    process.stderr.write = write;
  }
}

describe('ONNX Runtime sessions', () => {
  const model = buildReferenceSelector().model;

  beforeAll(() => setLogLevel('warn'));
  afterAll(() => setLogLevel('error'));

  it('runs on CPU by default', async () => {
    const { session, provider } = await new OnnxRuntime({ executionProvider: 'cpu', ...options }).load(model);
    expect(provider).toBe('cpu');
    expect([...session.inputNames].sort()).toEqual(['attention_mask', 'input_ids', 'pixel_values']);
    await session.release();
  });

  it('uses CUDA when asked and available, and otherwise falls back to CPU with one warning', async () => {
    const runtime = new OnnxRuntime({ executionProvider: 'cuda', ...options });
    const { result, lines } = await captureStderr(async () => [await runtime.load(model), await runtime.load(model)]);
    for (const loaded of result) {
      expect(['cpu', 'cuda']).toContain(loaded.provider);
      await loaded.session.release();
    }
    const warnings = lines.filter((l) => l.includes('falling back to CPU'));
    // Without the CUDA build of onnxruntime-node (the default install), the fallback is what happens.
    expect(warnings).toHaveLength(result[0].provider === 'cpu' ? 1 : 0);
  });

  it('keeps one session per key and retries a failed load', async () => {
    const cache = new SessionCache(new OnnxRuntime({ executionProvider: 'cpu', ...options }));
    let reads = 0;
    const read = async () => (reads++, model);
    const [a, b] = await Promise.all([cache.get('v1', read), cache.get('v1', read)]);
    expect(a).toBe(b);
    expect(reads).toBe(1);

    await expect(cache.get('broken', async () => model.subarray(0, 100))).rejects.toThrow();
    const fixed = await cache.get('broken', read);
    expect(fixed.provider).toBe('cpu');
    await cache.close();
  });
});

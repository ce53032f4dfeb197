/**
 * The Python client (clients/python) against this server: its unittest suite runs as a child
 * process, as a notebook would call the API, with a worker and the fake OpenAI server so that
 * generation, rating and scoring runs really go through the queue.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChatBehaviour, defaultChatBehaviour, FakeOpenAIServer } from '../fakes/openai-server';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { referenceSelectorUpload } from '../support/scoring-fixture';
import { PROJECT_ROOT, SHARED_DATA, SHARED_IMAGES } from '../support/shared-data';

jest.setTimeout(240_000);

const REPO = PROJECT_ROOT;
/** Must match UNRATEABLE in clients/python/tests/test_api.py: the judge never scores these figures. */
const UNRATEABLE = 'UNRATEABLE';
/** … and UNGENERATABLE: the model refuses to write conversations for these. */
const UNGENERATABLE = 'UNGENERATABLE';

const isJudge = (body: any) => (body?.messages ?? []).some((m: any) => m.role === 'system' && String(m.content).includes('You judge'));
const promptText = (body: any): string =>
  (body?.messages ?? [])
    .filter((m: any) => m.role === 'user')
    .map((m: any) => (typeof m.content === 'string' ? m.content : (m.content ?? []).filter((p: any) => p.type === 'text').map((p: any) => p.text).join('\n')))
    .join('\n');

function judge(body: any): ChatBehaviour {
  if (!isJudge(body)) return promptText(body).includes(UNGENERATABLE) ? { refusal: 'I cannot help with this figure.' } : defaultChatBehaviour(body);
  if (promptText(body).includes(UNRATEABLE)) return { reply: 'A careful answer, but I will not put a number on it.' };
  return { reply: JSON.stringify({ score: 7, rationale: 'Grounded in the figure.' }) };
}

function runPython(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-m', 'unittest', 'discover', '-s', 'clients/python/tests', '-v'], {
      cwd: REPO,
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1', ...env },
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('Python client', () => {
  let fake: FakeOpenAIServer;
  let app: TestApp;
  let lab: TestProject;
  let other: TestProject;
  let selectorDir: string;

  beforeAll(async () => {
    fake = await FakeOpenAIServer.start();
    fake.defaultChat = judge;
    app = await startTestApp(
      { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.baseUrl, LLM_RETRY_BASE_MS: '20', LLM_TIMEOUT_MS: '5000', LLM_TOKENS_PER_MINUTE: '1000000000' },
      { worker: true },
    );
    lab = await createTestProject(app, 'py-lab');
    other = await createTestProject(app, 'py-other');
    selectorDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bmv-selector-'));
    const upload = referenceSelectorUpload();
    fs.writeFileSync(path.join(selectorDir, 'model.onnx'), upload.model);
    fs.writeFileSync(path.join(selectorDir, 'tokenizer.json'), upload.tokenizer);
    fs.writeFileSync(path.join(selectorDir, 'selector.json'), upload.manifest);
  });

  afterAll(async () => {
    await app?.stop();
    await fake?.close();
    if (selectorDir) fs.rmSync(selectorDir, { recursive: true, force: true });
  });

  it('passes its unittest suite against the real server, skipping nothing', async () => {
    const { code, output } = await runPython({
      BMV_URL: app.graphqlUrl,
      BMV_KEY: lab.keys.CURATOR,
      BMV_VIEWER_KEY: lab.keys.VIEWER,
      BMV_OTHER_PROJECT_KEY: other.keys.OWNER,
      BMV_IMAGES_DIR: SHARED_IMAGES,
      BMV_RECORDS_FILE: path.join(SHARED_DATA, 'clinician-demonstrations.json'),
      BMV_SELECTOR_DIR: selectorDir,
    });
    if (code !== 0 || /skipped/.test(output)) throw new Error(`python3 exited ${code}:\n${output}`);
    expect(output).toMatch(/^Ran \d+ tests/m);
    expect(output).toMatch(/test_08_downloads_an_export_to_a_file_and_streams_one .* ok/);
    // The runs the client started went through the queue and hit the fake model.
    expect(fake.requests.filter((r) => r.endpoint === 'chat' && isJudge(r.body)).length).toBeGreaterThanOrEqual(30);
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { chromium, Browser, BrowserContext, Page } from 'playwright-core';
import { fromGlobalId } from '../../src/platform/ids';
import { ANNOTATE_PAGE_CSP } from '../../src/modules/annotation/annotate-page.routes';
import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { Role } from '../../src/modules/projects/role';
import { Modality } from '../../src/modules/images/modality';
import { PROJECT_ROOT, readSharedImage } from '../support/shared-data';

/**
 * The reference annotation page (issue 12) in a real browser: Debian's Chromium driven by
 * playwright-core against the real server, a clinician doing whole tasks with the keyboard only,
 * and what was stored checked through GraphQL and in the database. `SCREENSHOT=1` (or
 * `npm run screenshot:annotate`) also writes docs/annotate-page.png for the README.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOT = process.env.SCREENSHOT === '1';
const LAPTOP = { width: 1366, height: 768 };

/**
 * Two-answer candidates about two of the shared figures, uploaded here with captions and mentions
 * that describe what the pictures show (both are chest radiographs); questions and answers say which
 * candidate the page is showing.
 */
const CANDIDATES = [
  {
    image: 'synpic32933.jpg',
    figure: {
      caption: 'Frontal chest radiograph on admission: patchy opacity in the right lower zone, consistent with consolidation.',
      mentions: ['The admission radiograph (Figure 2) showed right lower zone consolidation.', 'A radiograph after six weeks of treatment showed complete resolution.'],
      modalities: [Modality.CHEST_XRAY],
      figLabel: 'Figure 2',
      pmid: '28790012',
    },
    rounds: [
      { question: 'What imaging modality is shown?', answers: ['A frontal (posteroanterior) chest radiograph.', 'An axial CT slice of the chest.'] },
      { question: 'Where is the abnormality?', answers: ['In the left upper lobe, next to the aortic knob.', 'In the right lower zone: a patchy opacity consistent with consolidation.'] },
      { question: 'What is the most likely diagnosis?', answers: ['Right lower lobe pneumonia, given the consolidation and the resolution on treatment.', 'Community-acquired pneumonia.'] },
      { question: 'Is a pleural effusion visible?', answers: ['Yes, a large right pleural effusion.', 'A small effusion on the left.'] },
    ],
  },
  {
    image: 'synpic42202.jpg',
    figure: {
      caption: 'Frontal chest radiograph after device implantation: a pacemaker generator over the left upper chest with its leads in the right heart.',
      mentions: ['Figure 3 shows the device after implantation.'],
      modalities: [Modality.CHEST_XRAY],
      figLabel: 'Figure 3',
      pmid: '28790012',
    },
    rounds: [
      { question: 'What device is visible?', answers: ['A cardiac pacemaker.', 'A central venous port.'] },
      { question: 'Where is the generator?', answers: ['Over the left upper chest.', 'In the right lower abdomen.'] },
      { question: 'Is there a pneumothorax?', answers: ['No pneumothorax is seen.', 'A large left pneumothorax.'] },
    ],
  },
];

/** What the clinician decides in the browser, round by round: [answer A accepted, answer B accepted]. */
const DECISIONS: [boolean, boolean][] = [
  [true, false],
  [false, true],
  [true, true],
  [false, false],
];
const GUIDELINES = [
  '# Accept or reject each answer',
  'Accept an answer that is **correct** and grounded in the figure.',
  'Reject anything the figure does not show.',
  '',
  '- Judge each answer on its own.',
  '- A comment helps when you reject: `wrong side`, `not visible`.',
  '',
  'Markup like <img src=x onerror="document.title=1"> stays text.',
].join('\n');
const COMMENT = 'Round 2, answer A puts the opacity on the wrong side.';

const CAMPAIGN_STATE = `query($id: ID!) { node(id: $id) { ... on AnnotationCampaign {
  itemCounts { pending inProgress completed total }
  myProgress { submitted skipped }
  items(first: 10) { edges { node { id status submittedCount candidate { id }
    submissions(first: 10) { edges { node { version comment annotator { id } acceptance { roundIndex answerIndex accepted } } } } } } }
} } }`;

const MY_PROGRESS = `query($id: ID!) { node(id: $id) { ... on AnnotationCampaign { myProgress { submitted skipped } } } }`;

const CREATE_CAMPAIGN = `mutation($input: CreateAnnotationCampaignInput!) {
  createAnnotationCampaign(input: $input) { campaign { id name } userErrors { field message code } }
}`;

// Browser-side expressions are passed as strings (this project's TypeScript has no DOM types) to
// page.evaluate, which runs them through the DevTools protocol; waitForFunction would eval them in
// the page, which the page's own CSP (rightly) forbids.
const STORED_KEY = "localStorage.getItem('biomedVital.apiKey')";

/** Polls a browser-side expression until it is truthy. */
async function waitUntil(page: Page, expression: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await page.evaluate(expression))) {
    if (Date.now() > deadline) throw new Error(`still false after ${timeoutMs} ms: ${expression}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const NEXT_TASK = `mutation($campaignId: ID!) {
  nextAnnotationTask(input: { campaignId: $campaignId }) { task { item { id } candidate { id rounds { index } } } userErrors { message } }
}`;

const SUBMIT = `mutation($input: SubmitAnnotationInput!) { submitAnnotation(input: $input) { submission { id } userErrors { message } } }`;

let app: TestApp;
let project: TestProject;
let other: TestProject;
let browser: Browser;
let campaignId: string;
/** A second clinician of the project, who works through the API while the page watches. */
let colleagueKey: string;
const candidateIds: string[] = [];

async function insertCandidate(imageId: string, rounds: { question: string; answers: string[] }[]): Promise<string> {
  // Written straight into the table as a generation run would, like the dataset fixture does.
  const rows: { id: string }[] = await app.ds.query(
    `INSERT INTO candidates (project_id, image_id, status, form, rounds, sample_index, model, prompt_template_version)
     VALUES ($1, $2, 'OK', 'TWO_ANSWERS', $3, 0, 'gpt-4o', 'generation/v1') RETURNING id`,
    [project.id, imageId, JSON.stringify(rounds)],
  );
  return rows[0].id;
}

/** A fresh browser context (its own storage) at the laptop size, failing the test on any page error or CSP violation. */
async function openPage(): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: LAPTOP });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  await page.goto(`${app.url}/annotate`);
  return { context, page, problems };
}

async function useKey(page: Page, key: string): Promise<void> {
  await page.fill('#key-input', key);
  await page.press('#key-input', 'Enter');
}

/** The candidate the page shows, from the data attribute the page sets and the rounds it rendered. */
async function shownCandidate(page: Page): Promise<number> {
  await page.waitForSelector('#rounds .round');
  const id = fromGlobalId((await page.getAttribute('#rounds', 'data-candidate-id'))!)!.id;
  const index = candidateIds.indexOf(id);
  expect(index).toBeGreaterThanOrEqual(0);
  const questions = await page.locator('#rounds .round .question').allTextContents();
  expect(questions).toEqual(CANDIDATES[index].rounds.map((r) => r.question));
  return index;
}

async function decisionShown(page: Page, round: number, answer: number): Promise<'accept' | 'reject' | null> {
  const radios = page.locator(`#rounds .round[data-round="${round}"] .answer[data-answer="${answer}"] input[type=radio]`);
  if (await radios.nth(0).isChecked()) return (await radios.nth(0).getAttribute('value')) as 'accept';
  if (await radios.nth(1).isChecked()) return (await radios.nth(1).getAttribute('value')) as 'reject';
  return null;
}

beforeAll(async () => {
  app = await startTestApp();
  project = await createTestProject(app, 'annotate-page');
  other = await createTestProject(app, 'annotate-page-other');
  const colleague = 'colleague@annotate-page.test';
  await app.services.projects.addMember(project.ctx(), { email: colleague, displayName: 'Colleague', role: Role.CLINICIAN });
  colleagueKey = (await app.services.projects.createKeyForMember(project.id, colleague, Role.CLINICIAN)).secret;
  for (const c of CANDIDATES) {
    const image = await app.services.images.upload(project.ctx(), readSharedImage(c.image), c.image, c.figure);
    candidateIds.push(await insertCandidate(image.id, c.rounds));
  }
  const created = await gql(app.graphqlUrl, project.keys.CURATOR, CREATE_CAMPAIGN, {
    input: {
      name: 'Radiology acceptance, round 1',
      guidelines: GUIDELINES,
      taskKind: 'ACCEPTANCE',
      items: { candidateFilter: {} },
      overlap: 1,
      routing: 'ORDERED',
    },
  });
  expect(created.errors).toBeUndefined();
  expect(created.data!.createAnnotationCampaign.userErrors).toEqual([]);
  campaignId = created.data!.createAnnotationCampaign.campaign.id;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // playwright-core gives every launch a fresh temporary profile; these keep an offline machine's
    // Chromium from reaching for the network (updates, sync, QUIC probes).
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

afterAll(async () => {
  await browser?.close();
  await app?.stop();
});

describe('GET /annotate', () => {
  it('serves the page, its script and stylesheet with a strict Content-Security-Policy', async () => {
    const html = await fetch(`${app.url}/annotate`);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = html.headers.get('content-security-policy')!;
    expect(csp).toBe(ANNOTATE_PAGE_CSP);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe');
    expect(html.headers.get('x-content-type-options')).toBe('nosniff');
    const body = await html.text();
    // Nothing inline and nothing from another origin: the policy would block it anyway.
    expect(body).not.toMatch(/<script>|<style|\sstyle=|\son[a-z]+=|https?:\/\//);

    const script = await fetch(`${app.url}/annotate/annotate.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await script.text()).toContain('nextAnnotationTask');
    const css = await fetch(`${app.url}/annotate/annotate.css`);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    expect((await fetch(`${app.url}/annotate/favicon.svg`)).headers.get('content-type')).toMatch(/^image\/svg\+xml/);
    expect((await fetch(`${app.url}/annotate/annotate.ts`)).status).toBe(404);
    expect((await fetch(`${app.url}/annotate/..%2Fpackage.json`)).status).toBe(404);
  });

  it('says so when a key is not valid, and keeps no bad key', async () => {
    const { context, page, problems } = await openPage();
    await useKey(page, 'bmv_not_a_real_key');
    await page.waitForSelector('#message:not([hidden])');
    expect(await page.textContent('#message')).toMatch(/not valid/);
    expect(await page.evaluate(STORED_KEY)).toBeNull();
    expect(await page.isVisible('#key-form')).toBe(true);
    // The refused GraphQL request is logged by Chromium as a failed resource (HTTP 401); nothing else
    // (no missing favicon, no CSP violation).
    expect(problems.filter((p) => !/401/.test(p))).toEqual([]);
    await context.close();
  });
});

describe('a clinician on the annotation page', () => {
  let context: BrowserContext;
  let page: Page;
  let problems: string[];
  let first: number;

  beforeAll(async () => {
    ({ context, page, problems } = await openPage());
  });
  afterAll(async () => {
    await context?.close();
  });

  it('pastes a key and gets the first task of the only campaign: figure, caption, mentions, guidelines, keys', async () => {
    await useKey(page, project.keys.CLINICIAN);
    first = await shownCandidate(page);
    expect(first).toBe(0); // ORDERED routing: oldest first
    const figure = CANDIDATES[first].figure;
    expect(await page.textContent('#caption')).toBe(figure.caption);
    expect(await page.locator('#mentions li').allTextContents()).toEqual(figure.mentions);
    expect(await page.textContent('#figure-label')).toBe('Figure 2 · PMID 28790012 · chest xray');
    expect(await page.getAttribute('#figure-img', 'alt')).toBe('Figure 2');
    expect(await page.textContent('#who-text')).toContain('CLINICIAN');
    expect(await page.inputValue('#campaign-select')).toBe(campaignId);
    // The guidelines' markdown as elements, and HTML in it as text.
    expect(await page.locator('#guidelines h4').allTextContents()).toEqual(['Accept or reject each answer']);
    expect(await page.locator('#guidelines p').first().textContent()).toBe('Accept an answer that is correct and grounded in the figure. Reject anything the figure does not show.');
    expect(await page.locator('#guidelines strong').allTextContents()).toEqual(['correct']);
    expect(await page.locator('#guidelines li').allTextContents()).toEqual(['Judge each answer on its own.', 'A comment helps when you reject: wrong side, not visible.']);
    expect(await page.locator('#guidelines code').count()).toBe(2);
    expect(await page.locator('#guidelines img').count()).toBe(0);
    expect(await page.textContent('#guidelines')).toContain('<img src=x onerror="document.title=1"> stays text.');
    expect(await page.textContent('#keys-help')).toMatch(/accept \/ reject A/);
    // The figure loaded through the signed URL the API gave, under the page's CSP.
    await waitUntil(page, "document.getElementById('figure-img').naturalWidth > 0");
    expect(await page.getAttribute('#figure-img', 'src')).toMatch(/\/files\/images\/[0-9a-f-]+\/original\?expires=/);
    expect(await page.evaluate(STORED_KEY)).toBe(project.keys.CLINICIAN);
    expect(await page.textContent('#progress')).toMatch(/You: 0 submitted, 0 skipped/);
  });

  it('fits a 1366x768 screen: the current round, the comment box and the buttons are in view without scrolling', async () => {
    const inView = async (selector: string) => {
      const box = (await page.locator(selector).first().boundingBox())!;
      return box.y >= 0 && box.x >= 0 && box.y + box.height <= LAPTOP.height && box.x + box.width <= LAPTOP.width;
    };
    expect(await inView('#submit-btn')).toBe(true);
    expect(await inView('#skip-btn')).toBe(true);
    expect(await inView('#comment')).toBe(true);
    expect(await inView('#figure-img')).toBe(true);
    expect(await inView('#rounds .round.current .answer[data-answer="1"] input[value=reject]')).toBe(true);
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
  });

  it('accepts and rejects every answer with one key each, comments, submits with Enter, and the API stored exactly that', async () => {
    const rounds = CANDIDATES[first].rounds.length;
    for (let r = 0; r < rounds; r++) {
      expect(await page.getAttribute(`#rounds .round[data-round="${r}"]`, 'aria-current')).toBe('step');
      const [a, b] = DECISIONS[r];
      await page.keyboard.press(a ? '1' : '2');
      await page.keyboard.press(b ? '3' : '4');
      expect(await decisionShown(page, r, 0)).toBe(a ? 'accept' : 'reject');
      expect(await decisionShown(page, r, 1)).toBe(b ? 'accept' : 'reject');
    }
    // A change of mind on round 1 by arrow keys, then back: the last key press counts.
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('ArrowUp');
    expect(await page.getAttribute('#rounds .round[data-round="1"]', 'aria-current')).toBe('step');
    await page.keyboard.press('1');
    await page.keyboard.press('2');
    expect(await decisionShown(page, 1, 0)).toBe('reject');

    await page.keyboard.press('c');
    expect(await page.evaluate('document.activeElement && document.activeElement.id')).toBe('comment');
    await page.keyboard.type(COMMENT);
    await page.keyboard.press('Escape');
    const submitted = await page.getAttribute('#rounds', 'data-candidate-id');
    if (SCREENSHOT) {
      fs.mkdirSync(path.join(PROJECT_ROOT, 'docs'), { recursive: true });
      await page.screenshot({ path: path.join(PROJECT_ROOT, 'docs', 'annotate-page.png') });
    }
    await page.keyboard.press('Enter');

    // The page moves on to the other candidate once the API has answered.
    await waitUntil(page, `document.getElementById('rounds').dataset.candidateId !== ${JSON.stringify(submitted)}`);
    expect(await shownCandidate(page)).toBe(1 - first);
    expect(await page.textContent('#message')).toMatch(/Saved your judgement \(version 1\)/);
    expect(await page.textContent('#progress')).toMatch(/You: 1 submitted, 0 skipped/);

    const expected = DECISIONS.slice(0, rounds).flatMap(([a, b], roundIndex) => [
      { roundIndex, answerIndex: 0, accepted: a },
      { roundIndex, answerIndex: 1, accepted: b },
    ]);

    // Through the API, as a curator reads it.
    const state = await gql(app.graphqlUrl, project.keys.CURATOR, CAMPAIGN_STATE, { id: campaignId });
    expect(state.errors).toBeUndefined();
    const items = state.data!.node.items.edges.map((e: any) => e.node);
    const done = items.find((i: any) => fromGlobalId(i.candidate.id)!.id === candidateIds[first]);
    expect(done.status).toBe('COMPLETED');
    expect(done.submittedCount).toBe(1);
    expect(done.submissions.edges).toHaveLength(1);
    const submission = done.submissions.edges[0].node;
    expect(submission.version).toBe(1);
    expect(submission.comment).toBe(COMMENT);
    expect(fromGlobalId(submission.annotator.id)!.id).toBe(project.userIds.CLINICIAN);
    expect([...submission.acceptance].sort((x: any, y: any) => x.roundIndex - y.roundIndex || x.answerIndex - y.answerIndex)).toEqual(expected);

    // And in the preferences agreement and training read: one CLINICIAN ACCEPTANCE row per answer.
    const rows: { round_index: number; answer_index: number; accepted: boolean }[] = await app.ds.query(
      `SELECT round_index, answer_index, accepted FROM preferences
        WHERE campaign_id = $1 AND candidate_id = $2 AND annotator_id = $3 AND source = 'CLINICIAN' AND kind = 'ACCEPTANCE'
        ORDER BY round_index, answer_index`,
      [fromGlobalId(campaignId)!.id, candidateIds[first], project.userIds.CLINICIAN],
    );
    expect(rows.map((r) => ({ roundIndex: r.round_index, answerIndex: r.answer_index, accepted: r.accepted }))).toEqual(expected);
  });

  it('fixes a slip with p: the previous item opens with its decisions, Enter saves version 2, and the current task comes back', async () => {
    await page.keyboard.press('1'); // a decision on the current task, which must survive the detour
    const current = await page.getAttribute('#rounds', 'data-candidate-id');
    await page.keyboard.press('p');
    await waitUntil(page, `document.getElementById('rounds').dataset.candidateId !== ${JSON.stringify(current)}`);
    expect(await shownCandidate(page)).toBe(first);
    expect(await page.textContent('#task-title')).toMatch(/editing your version 1/);
    expect(await page.inputValue('#comment')).toBe(COMMENT);
    expect(await decisionShown(page, 0, 0)).toBe('accept');
    expect(await decisionShown(page, 1, 0)).toBe('reject');
    expect(await page.isHidden('#skip-btn')).toBe(true);
    // Round 3, answer B names no finding at all: reject it after all.
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('4');
    expect(await decisionShown(page, 2, 1)).toBe('reject');
    await page.keyboard.press('Enter');
    await waitUntil(page, "/new version \\(2\\)/.test(document.getElementById('message').textContent)");
    expect(await shownCandidate(page)).toBe(1 - first);
    expect(await decisionShown(page, 0, 0)).toBe('accept');
    expect(await decisionShown(page, 0, 1)).toBeNull();

    const state = await gql(app.graphqlUrl, project.keys.CURATOR, CAMPAIGN_STATE, { id: campaignId });
    const done = state.data!.node.items.edges.map((e: any) => e.node).find((i: any) => fromGlobalId(i.candidate.id)!.id === candidateIds[first]);
    expect(done.submissions.edges.map((e: any) => e.node.version)).toEqual([1, 2]);
    expect(done.submittedCount).toBe(1);
    // Only the latest version counts in the preferences.
    const rows: { accepted: boolean }[] = await app.ds.query(
      `SELECT accepted FROM preferences WHERE campaign_id = $1 AND candidate_id = $2 AND round_index = 2 AND answer_index = 1`,
      [fromGlobalId(campaignId)!.id, candidateIds[first]],
    );
    expect(rows).toEqual([{ accepted: false }]);
  });

  it('refuses to submit with an answer left open, and says which one', async () => {
    await page.keyboard.press('Enter');
    expect(await page.textContent('#message')).toMatch(/round 1 answer B is open/);
    const state = await gql(app.graphqlUrl, project.keys.CURATOR, CAMPAIGN_STATE, { id: campaignId });
    expect(state.data!.node.itemCounts.completed).toBe(1);
    expect(state.data!.node.items.edges.filter((e: any) => e.node.submittedCount > 0)).toHaveLength(1);
  });

  it('skips with s: nothing is stored for the item, and nothing is left for this clinician', async () => {
    await page.keyboard.press('s');
    await page.waitForSelector('#empty:not([hidden])');
    expect(await page.isHidden('#workspace')).toBe(true);
    expect(await page.textContent('#progress')).toMatch(/You: 1 submitted, 1 skipped/);
    const mine = await gql(app.graphqlUrl, project.keys.CLINICIAN, MY_PROGRESS, { id: campaignId });
    expect(mine.errors).toBeUndefined();
    expect(mine.data!.node.myProgress).toEqual({ submitted: 1, skipped: 1 });
    const skipped = await app.ds.query(`SELECT count(*)::int AS n FROM preferences WHERE candidate_id = $1`, [candidateIds[1 - first]]);
    expect(skipped[0].n).toBe(0);
  });

  it('shows progress live: a colleague completes the skipped item through the API and the page updates without a reload', async () => {
    const next = await gql(app.graphqlUrl, colleagueKey, NEXT_TASK, { campaignId });
    expect(next.errors).toBeUndefined();
    const task = next.data!.nextAnnotationTask.task;
    expect(fromGlobalId(task.candidate.id)!.id).toBe(candidateIds[1 - first]);
    const acceptance = task.candidate.rounds.flatMap((r: { index: number }) => [0, 1].map((answerIndex) => ({ roundIndex: r.index, answerIndex, accepted: true })));
    const submitted = await gql(app.graphqlUrl, colleagueKey, SUBMIT, { input: { itemId: task.item.id, acceptance } });
    expect(submitted.errors).toBeUndefined();
    expect(submitted.data!.submitAnnotation.userErrors).toEqual([]);
    // annotationCampaignUpdated over the page's own graphql-ws socket.
    await waitUntil(page, "document.getElementById('progress').textContent.includes('Campaign: 2/2 completed')");
    expect(await page.textContent('#progress')).toMatch(/You: 1 submitted, 1 skipped/);
  });

  it('keeps the key in this browser: a reload comes back signed in to the same campaign', async () => {
    await page.reload();
    await page.waitForSelector('#who:not([hidden])');
    expect(await page.inputValue('#campaign-select')).toBe(campaignId);
    await page.waitForSelector('#empty:not([hidden])');
    await page.click('#forget-key');
    expect(await page.evaluate(STORED_KEY)).toBeNull();
    expect(await page.isVisible('#key-form')).toBe(true);
    expect(problems).toEqual([]);
  });
});

describe('other keys on the annotation page', () => {
  it("a second project's clinician sees none of this project's campaigns", async () => {
    const { context, page, problems } = await openPage();
    await useKey(page, other.keys.CLINICIAN);
    await page.waitForSelector('#who:not([hidden])');
    await page.waitForSelector('#message:not([hidden])');
    expect(await page.textContent('#message')).toMatch(/no annotation campaign/);
    expect(await page.locator('#campaign-select option').allTextContents()).toEqual(['No campaign']);
    expect(problems).toEqual([]);
    await context.close();
  });

  it('a viewer sees the campaign and its progress but is told that only clinicians annotate', async () => {
    const { context, page } = await openPage();
    await useKey(page, project.keys.VIEWER);
    await page.waitForSelector('#message:not([hidden])');
    expect(await page.inputValue('#campaign-select')).toBe(campaignId);
    // Refused by the API (FORBIDDEN or a user error, as the API words it); the page only relays it.
    expect((await page.textContent('#message'))!.length).toBeGreaterThan(10);
    expect(await page.isHidden('#workspace')).toBe(true);
    expect(await page.isHidden('#empty')).toBe(true);
    expect(await page.textContent('#progress')).toMatch(/Campaign: 2\/2 completed/);
    await context.close();
  });
});

describe('RATING and PAIRWISE campaigns on the annotation page', () => {
  let context: BrowserContext;
  let page: Page;
  let problems: string[];
  const ids: Record<'RATING' | 'PAIRWISE', string> = { RATING: '', PAIRWISE: '' };

  beforeAll(async () => {
    for (const taskKind of ['RATING', 'PAIRWISE'] as const) {
      const created = await gql(app.graphqlUrl, project.keys.CURATOR, CREATE_CAMPAIGN, {
        input: { name: `Radiology ${taskKind.toLowerCase()}`, taskKind, items: { candidateFilter: {} }, overlap: 1, routing: 'ORDERED' },
      });
      expect(created.data?.createAnnotationCampaign.userErrors).toEqual([]);
      ids[taskKind] = created.data!.createAnnotationCampaign.campaign.id;
    }
    ({ context, page, problems } = await openPage());
    await useKey(page, project.keys.CLINICIAN);
    await page.waitForSelector('#who:not([hidden])');
  });
  afterAll(async () => {
    await context?.close();
  });

  it('RATING: a number per answer, Tab between them, Enter submits; stored as one RATING preference per answer', async () => {
    await page.selectOption('#campaign-select', ids.RATING);
    expect(await shownCandidate(page)).toBe(0);
    const rounds = CANDIDATES[0].rounds.length;
    const ratings = Array.from({ length: rounds * 2 }, (_, i) => (i * 3) % 11);
    await page.keyboard.press('Enter');
    expect(await page.textContent('#message')).toMatch(/round 1 answer A is open/);
    for (const [i, rating] of ratings.entries()) {
      await page.keyboard.press('Tab');
      expect(await page.evaluate('document.activeElement.getAttribute("aria-label")')).toBe(`Rating of round ${Math.floor(i / 2) + 1} answer ${i % 2 ? 'B' : 'A'}, 0 to 10`);
      await page.keyboard.type(String(rating));
    }
    await page.keyboard.press('Enter');
    await waitUntil(page, `document.getElementById('rounds').dataset.candidateId !== ${JSON.stringify(await page.getAttribute('#rounds', 'data-candidate-id'))}`);
    const rows: { round_index: number; answer_index: number; rating: number }[] = await app.ds.query(
      `SELECT round_index, answer_index, rating FROM preferences
        WHERE campaign_id = $1 AND candidate_id = $2 AND annotator_id = $3 AND kind = 'RATING' ORDER BY round_index, answer_index`,
      [fromGlobalId(ids.RATING)!.id, candidateIds[0], project.userIds.CLINICIAN],
    );
    expect(rows.map((r) => Number(r.rating))).toEqual(ratings);
  });

  it("PAIRWISE: only the item's round is shown, b chooses answer B, Enter submits; the next item is the next round", async () => {
    await page.selectOption('#campaign-select', ids.PAIRWISE);
    await page.waitForSelector('#workspace:not([hidden])');
    // One round shown, not the whole candidate.
    expect(await page.locator('#rounds .round .question').allTextContents()).toEqual([CANDIDATES[0].rounds[0].question]);
    expect(await page.textContent('#keys-help')).toMatch(/A better \/ B better \/ tie/);
    await page.keyboard.press('b');
    expect(await page.isChecked('#rounds input[value="0:B"]')).toBe(true);
    await page.keyboard.press('Enter');
    await waitUntil(page, `document.querySelector('#rounds .round .question').textContent === ${JSON.stringify(CANDIDATES[0].rounds[1].question)}`);
    const rows: { round_index: number; choice: string }[] = await app.ds.query(
      `SELECT round_index, choice FROM preferences WHERE campaign_id = $1 AND annotator_id = $2 AND kind = 'PAIRWISE'`,
      [fromGlobalId(ids.PAIRWISE)!.id, project.userIds.CLINICIAN],
    );
    expect(rows).toEqual([{ round_index: 0, choice: 'B' }]);
    expect(problems).toEqual([]);
  });
});

/*
 * The reference annotation page (issue 12): how a client does clinician annotation with the public
 * GraphQL API only. No framework and no build step, so every request is in plain sight:
 *
 *   1. POST /graphql with `Authorization: Bearer <key>` (the key stays in this browser's localStorage).
 *   2. `viewer` and `annotationCampaigns` fill the campaign picker.
 *   3. `nextAnnotationTask(input: { campaignId })` leases one item to the caller (null when nothing is left).
 *   4. `submitAnnotation(input)` or `skipAnnotationTask(input: { itemId })`, then the next task;
 *      `annotationCampaignUpdated` (graphql-ws) keeps the progress figures live meanwhile.
 *
 * Text from the API (captions, questions, answers, guidelines) is only ever set with textContent,
 * never parsed as HTML (the guidelines' bit of markdown is turned into elements here, text nodes
 * only), and the page's Content-Security-Policy forbids inline scripts besides.
 */
'use strict';

(function annotatePage() {
  const STORAGE_KEY = 'biomedVital.apiKey';
  const STORAGE_CAMPAIGN = 'biomedVital.annotationCampaignId';
  const GRAPHQL_URL = '/graphql';

  // ---- GraphQL documents -------------------------------------------------------------------------

  const CAMPAIGN_FIELDS = `
    fragment CampaignFields on AnnotationCampaign {
      id name guidelines taskKind blind overlap leaseSeconds
      itemCounts { pending inProgress completed total }
      myProgress { submitted skipped }
    }`;

  const CANDIDATE_FIELDS = `
    fragment CandidateFields on Candidate {
      id
      rounds { index question answer alternativeAnswer }
      image { id url caption mentions figLabel pmid modalities }
    }`;

  const CAMPAIGNS_QUERY = `
    query AnnotatePageCampaigns {
      viewer { role user { displayName } project { name } }
      annotationCampaigns(first: 100) { edges { node { ...CampaignFields } } }
    }
    ${CAMPAIGN_FIELDS}`;

  const CAMPAIGN_QUERY = `
    query AnnotatePageCampaign($id: ID!) { node(id: $id) { ... on AnnotationCampaign { ...CampaignFields } } }
    ${CAMPAIGN_FIELDS}`;

  const NEXT_TASK = `
    mutation AnnotatePageNextTask($input: NextAnnotationTaskInput!) {
      nextAnnotationTask(input: $input) {
        task {
          leaseExpiresAt
          item { id status submittedCount roundIndex }
          candidate { ...CandidateFields }
          otherCandidate { ...CandidateFields }
          campaign { ...CampaignFields }
          mySubmission {
            id version comment choice roundIndex
            acceptance { roundIndex answerIndex accepted }
            ratings { roundIndex answerIndex rating }
          }
        }
        userErrors { field message code }
      }
    }
    ${CANDIDATE_FIELDS}
    ${CAMPAIGN_FIELDS}`;

  const SUBMIT = `
    mutation AnnotatePageSubmit($input: SubmitAnnotationInput!) {
      submitAnnotation(input: $input) {
        submission { id version }
        item { id status submittedCount }
        userErrors { field message code }
      }
    }`;

  const SKIP = `
    mutation AnnotatePageSkip($input: SkipAnnotationTaskInput!) {
      skipAnnotationTask(input: $input) {
        item { id status }
        userErrors { field message code }
      }
    }`;

  const CAMPAIGN_UPDATED = `
    subscription AnnotatePageCampaignUpdated($campaignId: ID!) {
      annotationCampaignUpdated(campaignId: $campaignId) { ...CampaignFields }
    }
    ${CAMPAIGN_FIELDS}`;

  // ---- State -------------------------------------------------------------------------------------

  const state = {
    key: null,
    viewer: null,
    campaigns: [],
    campaign: null,
    task: null,
    /** ACCEPTANCE: decisions[round][answer] = true | false | null. */
    decisions: [],
    /** RATING: ratings[round][answer] = number | null. */
    ratings: [],
    /** PAIRWISE: { roundIndex, choice } | null. */
    choice: null,
    /** The round the number keys act on. */
    current: 0,
    busy: false,
    leaseTimer: null,
    /** The WebSocket of the live progress subscription, if open. */
    socket: null,
    /** The task last submitted from this page, with what was submitted, so a slip can be fixed at once. */
    previous: null,
    /** While editing `previous`: the leased task (and its unsaved decisions) to come back to. */
    resume: null,
    /** nextAnnotationTask requests sent, to drop the answers of superseded ones. */
    taskRequests: 0,
  };

  const $ = (id) => document.getElementById(id);
  const el = (tag, props, children) => {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of children || []) node.append(child);
    return node;
  };

  class ApiError extends Error {
    constructor(message, code) {
      super(message);
      this.code = code;
    }
  }

  /** One GraphQL request; a GraphQL error (FORBIDDEN, UNAUTHENTICATED, ...) becomes an ApiError with its code. */
  async function graphql(query, variables) {
    let response;
    try {
      response = await fetch(GRAPHQL_URL, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${state.key}` },
        body: JSON.stringify({ query, variables: variables || {} }),
      });
    } catch (error) {
      throw new ApiError(`The API cannot be reached (${error.message})`, 'NETWORK');
    }
    let body;
    try {
      body = await response.json();
    } catch {
      throw new ApiError(`The API answered HTTP ${response.status}`, 'HTTP');
    }
    if (body.errors && body.errors.length) {
      const first = body.errors[0];
      throw new ApiError(first.message, first.extensions && first.extensions.code);
    }
    return body.data;
  }

  /** userErrors of a payload as one sentence, or null. */
  function userErrorText(payload) {
    const errors = (payload && payload.userErrors) || [];
    return errors.length ? errors.map((e) => e.message).join(' ') : null;
  }

  // ---- Messages and progress ---------------------------------------------------------------------

  function showMessage(text, kind) {
    const box = $('message');
    box.textContent = text || '';
    box.hidden = !text;
    box.dataset.kind = kind || 'error';
  }

  function explain(error) {
    if (error.code === 'UNAUTHENTICATED') return 'This key is not valid (revoked or mistyped). Paste another one.';
    if (error.code === 'FORBIDDEN') return `Not allowed with this key: ${error.message}`;
    if (error.code === 'RATE_LIMITED') return 'Too many requests with this key; wait a minute and try again.';
    return error.message;
  }

  function renderProgress() {
    const c = state.campaign;
    if (!c) return void ($('progress').textContent = '');
    const mine = c.myProgress ? `You: ${c.myProgress.submitted} submitted, ${c.myProgress.skipped} skipped` : 'You: not an annotator here';
    const n = c.itemCounts;
    $('progress').textContent = `${mine} · Campaign: ${n.completed}/${n.total} completed, ${n.inProgress} in progress, ${n.pending} pending`;
  }

  function renderLease() {
    clearInterval(state.leaseTimer);
    const lease = $('lease');
    if (!state.task) return void (lease.textContent = '');
    if (state.resume) {
      lease.dataset.expired = 'false';
      return void (lease.textContent = 'Submitting saves a new version; p goes back');
    }
    const expires = new Date(state.task.leaseExpiresAt).getTime();
    const tick = () => {
      const left = Math.round((expires - Date.now()) / 1000);
      if (left <= 0) {
        lease.textContent = 'Lease expired: submitting may fail; skip or reload';
        lease.dataset.expired = 'true';
        clearInterval(state.leaseTimer);
        return;
      }
      lease.dataset.expired = 'false';
      lease.textContent = `Lease ${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')} left`;
    };
    tick();
    state.leaseTimer = setInterval(tick, 1000);
  }

  /**
   * The campaign's guidelines (markdown) as elements: headings, bullet and numbered lists,
   * paragraphs, **bold**, *italics* and `code`. Anything else stays as written. No HTML is parsed.
   */
  function renderGuidelines(markdown) {
    const box = $('guidelines');
    box.replaceChildren();
    if (!markdown || !markdown.trim()) return void box.append(el('p', { textContent: 'No guidelines were written for this campaign.' }));
    let list = null;
    let paragraph = null;
    for (const line of markdown.split(/\r?\n/)) {
      const heading = /^#{1,6}\s+(.*)$/.exec(line);
      const bullet = /^\s*(?:[-*+]|(\d+)[.)])\s+(.*)$/.exec(line);
      if (!line.trim()) {
        list = paragraph = null;
      } else if (heading) {
        list = paragraph = null;
        box.append(el('h4', {}, inline(heading[1])));
      } else if (bullet) {
        paragraph = null;
        const ordered = bullet[1] !== undefined;
        if (!list || (list.tagName === 'OL') !== ordered) box.append((list = el(ordered ? 'ol' : 'ul')));
        list.append(el('li', {}, inline(bullet[2])));
      } else if (paragraph) {
        paragraph.append(' ', ...inline(line.trim()));
      } else {
        list = null;
        box.append((paragraph = el('p', {}, inline(line.trim()))));
      }
    }
  }

  /** **bold**, *italics* and `code` spans of one line as nodes; the rest as text. */
  function inline(text) {
    const nodes = [];
    const pattern = /\*\*([^*]+)\*\*|\*([^*]+)\*|`([^`]+)`/g;
    let last = 0;
    for (let m; (m = pattern.exec(text)); last = pattern.lastIndex) {
      if (m.index > last) nodes.push(text.slice(last, m.index));
      nodes.push(el(m[1] !== undefined ? 'strong' : m[2] !== undefined ? 'em' : 'code', { textContent: m[1] ?? m[2] ?? m[3] }));
    }
    if (last < text.length) nodes.push(text.slice(last));
    return nodes;
  }

  // ---- Key and campaigns -------------------------------------------------------------------------

  async function useKey(key) {
    state.key = key;
    showMessage(null);
    try {
      const data = await graphql(CAMPAIGNS_QUERY);
      localStorage.setItem(STORAGE_KEY, key);
      state.viewer = data.viewer;
      state.campaigns = data.annotationCampaigns.edges.map((e) => e.node);
    } catch (error) {
      state.key = null;
      // A key the API refuses (revoked, mistyped) is not kept for the next visit; an outage is no reason to forget it.
      if (error.code === 'UNAUTHENTICATED') localStorage.removeItem(STORAGE_KEY);
      $('key-form').hidden = false;
      $('who').hidden = true;
      showMessage(explain(error));
      return;
    }
    $('key-form').hidden = true;
    $('who').hidden = false;
    $('who-text').textContent = `${state.viewer.user.displayName} (${state.viewer.role}) · ${state.viewer.project.name}`;
    renderCampaignOptions();
    const remembered = localStorage.getItem(STORAGE_CAMPAIGN);
    const pick = state.campaigns.find((c) => c.id === remembered) || (state.campaigns.length === 1 ? state.campaigns[0] : null);
    if (pick) await selectCampaign(pick.id);
    else if (!state.campaigns.length) showMessage('This project has no annotation campaign yet; a curator creates one with createAnnotationCampaign.', 'info');
  }

  function forgetKey() {
    localStorage.removeItem(STORAGE_KEY);
    watchCampaign(null);
    state.key = null;
    state.viewer = null;
    state.campaigns = [];
    state.campaign = null;
    setTask(null);
    $('workspace').hidden = true;
    $('empty').hidden = true;
    $('who').hidden = true;
    $('key-form').hidden = false;
    $('key-input').value = '';
    renderCampaignOptions();
    renderProgress();
    $('key-input').focus();
  }

  function renderCampaignOptions() {
    const select = $('campaign-select');
    select.replaceChildren();
    if (!state.key) {
      select.append(el('option', { value: '', textContent: 'Use a key first' }));
      select.disabled = true;
      return;
    }
    select.append(el('option', { value: '', textContent: state.campaigns.length ? 'Pick a campaign' : 'No campaign' }));
    for (const c of state.campaigns) {
      select.append(el('option', { value: c.id, textContent: `${c.name} (${c.taskKind.toLowerCase()}, ${c.itemCounts.completed}/${c.itemCounts.total} done)` }));
    }
    select.disabled = !state.campaigns.length;
    select.value = state.campaign ? state.campaign.id : '';
  }

  async function selectCampaign(id) {
    // Nothing of the previous campaign's task may stay on screen (or under the keys) while the next loads.
    state.task = null;
    state.resume = null;
    state.previous = null;
    $('workspace').hidden = true;
    $('empty').hidden = true;
    state.campaign = state.campaigns.find((c) => c.id === id) || null;
    $('campaign-select').value = id || '';
    renderProgress();
    if (!state.campaign) {
      watchCampaign(null);
      setTask(null);
      $('workspace').hidden = true;
      return;
    }
    localStorage.setItem(STORAGE_CAMPAIGN, id);
    watchCampaign(id);
    renderGuidelines(state.campaign.guidelines);
    await nextTask();
  }

  async function refreshCampaign() {
    if (!state.campaign) return;
    try {
      const data = await graphql(CAMPAIGN_QUERY, { id: state.campaign.id });
      if (data.node) state.campaign = data.node;
    } catch {
      // Progress is informative only; the next action reports a real failure.
    }
    renderProgress();
  }

  /**
   * Live progress: `annotationCampaignUpdated` over graphql-ws (the protocol in a few lines, no
   * library), on the same path as POST /graphql, the key in connection_init's payload. Progress is
   * informative, so a failed socket only means the figures update after your own actions instead.
   */
  function watchCampaign(campaignId) {
    if (state.socket) state.socket.close();
    state.socket = null;
    if (!campaignId || !('WebSocket' in window)) return;
    const url = new URL(GRAPHQL_URL, location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(url.href, 'graphql-transport-ws');
    state.socket = socket;
    socket.addEventListener('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${state.key}` } })));
    socket.addEventListener('message', (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === 'connection_ack') {
        socket.send(JSON.stringify({ id: 'progress', type: 'subscribe', payload: { query: CAMPAIGN_UPDATED, variables: { campaignId } } }));
      } else if (message.type === 'ping') {
        socket.send(JSON.stringify({ type: 'pong' }));
      } else if (message.type === 'next' && message.payload && message.payload.data) {
        const campaign = message.payload.data.annotationCampaignUpdated;
        if (campaign && state.campaign && campaign.id === state.campaign.id && state.socket === socket) {
          state.campaign = campaign;
          renderProgress();
        }
      }
    });
  }

  // ---- Tasks -------------------------------------------------------------------------------------

  async function nextTask() {
    if (!state.campaign) return;
    // Only the latest request shows its answer: a campaign picked while an earlier one was loading wins.
    const request = ++state.taskRequests;
    state.busy = true;
    try {
      const data = await graphql(NEXT_TASK, { input: { campaignId: state.campaign.id } });
      if (request !== state.taskRequests) return;
      const payload = data.nextAnnotationTask;
      const problem = userErrorText(payload);
      if (problem) {
        setTask(null);
        $('empty').hidden = true;
        showMessage(problem);
        return;
      }
      setTask(payload.task);
      if (!payload.task) await refreshCampaign();
    } catch (error) {
      if (request !== state.taskRequests) return;
      setTask(null);
      $('empty').hidden = true;
      showMessage(explain(error));
    } finally {
      if (request === state.taskRequests) state.busy = false;
    }
  }

  function setTask(task) {
    state.task = task;
    state.choice = null;
    state.current = 0;
    $('comment').value = '';
    if (task && task.campaign) {
      state.campaign = task.campaign;
      const i = state.campaigns.findIndex((c) => c.id === task.campaign.id);
      if (i >= 0) state.campaigns[i] = task.campaign;
      renderGuidelines(task.campaign.guidelines);
    }
    const rounds = task ? task.candidate.rounds : [];
    state.decisions = rounds.map((r) => (r.alternativeAnswer == null ? [null] : [null, null]));
    state.ratings = rounds.map((r) => (r.alternativeAnswer == null ? [null] : [null, null]));
    const mine = task && task.mySubmission;
    if (mine) {
      // Editing: start from what this clinician submitted last; submitting makes a new version.
      for (const a of mine.acceptance || []) if (state.decisions[a.roundIndex]) state.decisions[a.roundIndex][a.answerIndex] = a.accepted;
      for (const r of mine.ratings || []) if (state.ratings[r.roundIndex]) state.ratings[r.roundIndex][r.answerIndex] = r.rating;
      if (mine.choice) state.choice = { roundIndex: mine.roundIndex, choice: mine.choice };
      $('comment').value = mine.comment || '';
    }
    $('empty').hidden = Boolean(task) || !state.campaign;
    $('workspace').hidden = !task;
    renderPreviousButtons();
    renderProgress();
    renderLease();
    if (!task) return;
    showMessage(null);
    renderFigure(task.candidate.image);
    renderRounds();
    renderKeysHelp();
    $('task-title').textContent = `${kindTitle(state.campaign.taskKind)}${mine ? ` · editing your version ${mine.version}` : ''}`;
    $('rounds').dataset.itemId = task.item.id;
    $('rounds').dataset.candidateId = task.candidate.id;
    // Focus moves to the task (announced by screen readers), out of the campaign picker or key box
    // whose own keys would otherwise swallow the annotation keys.
    $('task-heading').focus({ preventScroll: true });
  }

  function kindTitle(kind) {
    if (kind === 'ACCEPTANCE') return 'Accept or reject each answer';
    if (kind === 'PAIRWISE') return 'Which answer is better?';
    return 'Rate each answer from 0 to 10';
  }

  function renderFigure(image) {
    const img = $('figure-img');
    img.removeAttribute('src');
    // Short alt text: the caption is the figcaption right below it.
    img.alt = image.figLabel || 'The figure to annotate';
    // The API hands out a signed, expiring URL for <img> tags, so no key is needed to load it.
    if (image.url) img.src = image.url;
    else img.alt = 'This figure has no stored image file; judge from the caption.';
    $('figure-zoom').setAttribute('aria-pressed', 'false');
    $('figure-zoom').setAttribute('aria-label', `Zoom ${img.alt} (z)`);
    document.body.classList.remove('zoomed');
    $('figure-label').textContent = [image.figLabel, image.pmid ? `PMID ${image.pmid}` : null, (image.modalities || []).join(', ').toLowerCase().replace(/_/g, ' ')].filter(Boolean).join(' · ');
    $('caption').textContent = image.caption;
    const mentions = $('mentions');
    mentions.replaceChildren(...(image.mentions.length ? image.mentions.map((m) => el('li', { textContent: m })) : [el('li', { className: 'none', textContent: 'No in-text mention.' })]));
  }

  const ANSWER_KEYS = [
    { accept: '1', reject: '2' },
    { accept: '3', reject: '4' },
  ];

  function renderRounds() {
    const list = $('rounds');
    list.replaceChildren();
    const kind = state.campaign.taskKind;
    if (kind === 'PAIRWISE' && state.task.otherCandidate) return renderCandidatePair();
    const judgedRound = kind === 'PAIRWISE' ? state.task.item.roundIndex : null;
    state.task.candidate.rounds.forEach((round, r) => {
      // PAIRWISE of answers judges one round; the others would only distract.
      if (judgedRound != null && r !== judgedRound) return;
      const answers = round.alternativeAnswer == null ? [round.answer] : [round.answer, round.alternativeAnswer];
      const item = el('li', { className: 'round' });
      item.dataset.round = String(r);
      item.append(el('p', { className: 'question', textContent: round.question }));
      const row = el('div', { className: 'answers' });
      answers.forEach((text, a) => row.append(renderAnswer(kind, r, a, text)));
      item.append(row);
      if (kind === 'PAIRWISE') item.append(renderChoice(r, ['Answer A is better', 'Answer B is better']));
      item.addEventListener('click', () => setCurrent(r, false));
      item.addEventListener('focusin', () => setCurrent(r, false));
      list.append(item);
    });
    if (judgedRound != null) state.current = judgedRound;
    syncControls();
  }

  /** PAIRWISE of two candidates of one image: both conversations side by side, one choice. */
  function renderCandidatePair() {
    const list = $('rounds');
    const item = el('li', { className: 'round pair' });
    item.dataset.round = '0';
    const row = el('div', { className: 'answers' });
    [state.task.candidate, state.task.otherCandidate].forEach((candidate, a) => {
      const box = el('div', { className: 'answer' });
      box.dataset.answer = String(a);
      box.append(el('p', { className: 'question', textContent: `Conversation ${a === 0 ? 'A' : 'B'}` }));
      for (const round of candidate.rounds) {
        box.append(el('p', { className: 'pair-question', textContent: round.question }));
        box.append(el('p', { className: 'answer-text', textContent: round.answer }));
      }
      row.append(box);
    });
    item.append(row, renderChoice(0, ['Conversation A is better', 'Conversation B is better']));
    list.append(item);
    syncControls();
  }

  function answerName(r, a) {
    return `round ${r + 1} answer ${a === 0 ? 'A' : 'B'}`;
  }

  function renderAnswer(kind, r, a, text) {
    const box = el('div', { className: 'answer' });
    box.dataset.answer = String(a);
    box.append(el('p', { className: 'answer-text' }, [el('strong', { textContent: `${a === 0 ? 'A' : 'B'} ` }), text]));
    if (kind === 'ACCEPTANCE') {
      const group = el('fieldset', { className: 'decision' });
      group.append(el('legend', { className: 'visually-hidden', textContent: `Decision on ${answerName(r, a)}` }));
      for (const accepted of [true, false]) {
        const input = el('input', { type: 'radio', name: `decision-${r}-${a}`, value: accepted ? 'accept' : 'reject' });
        input.addEventListener('change', () => decide(r, a, accepted));
        const key = ANSWER_KEYS[a][accepted ? 'accept' : 'reject'];
        group.append(el('label', { className: accepted ? 'accept' : 'reject' }, [input, ` ${accepted ? 'Accept' : 'Reject'} `, el('kbd', { textContent: key })]));
      }
      box.append(group);
    } else if (kind === 'RATING') {
      const input = el('input', { type: 'number', min: '0', max: '10', step: '0.5', className: 'rating-input' });
      input.setAttribute('aria-label', `Rating of ${answerName(r, a)}, 0 to 10`);
      input.addEventListener('input', () => {
        const value = input.value === '' ? null : Number(input.value);
        state.ratings[r][a] = value;
      });
      box.append(el('label', { className: 'rating' }, ['Rating ', input, ' / 10']));
    }
    return box;
  }

  function renderChoice(r, labels) {
    const group = el('fieldset', { className: 'decision choice' });
    group.append(el('legend', { className: 'visually-hidden', textContent: 'Which is better?' }));
    for (const [choice, label, key] of [['A', labels[0], 'a'], ['B', labels[1], 'b'], ['TIE', 'Tie', 't']]) {
      const input = el('input', { type: 'radio', name: 'pairwise-choice', value: `${r}:${choice}` });
      input.addEventListener('change', () => choose(r, choice));
      group.append(el('label', {}, [input, ` ${label} `, el('kbd', { textContent: key })]));
    }
    return group;
  }

  /** Mirrors the state into the radios, ratings and the current-round highlight. */
  function syncControls() {
    const list = $('rounds');
    for (const item of list.children) {
      const r = Number(item.dataset.round);
      const current = r === state.current;
      item.classList.toggle('current', current);
      if (current) item.setAttribute('aria-current', 'step');
      else item.removeAttribute('aria-current');
      (state.decisions[r] || []).forEach((decision, a) => {
        for (const input of item.querySelectorAll(`input[name="decision-${r}-${a}"]`)) input.checked = decision !== null && (input.value === 'accept') === decision;
        const box = item.querySelector(`.answer[data-answer="${a}"]`);
        if (box) box.dataset.decision = decision === null ? '' : decision ? 'accepted' : 'rejected';
      });
      (state.ratings[r] || []).forEach((rating, a) => {
        const input = item.querySelector(`.answer[data-answer="${a}"] .rating-input`);
        if (input && document.activeElement !== input) input.value = rating == null ? '' : String(rating);
      });
      for (const input of item.querySelectorAll('input[name="pairwise-choice"]')) {
        input.checked = Boolean(state.choice) && input.value === `${state.choice.roundIndex}:${state.choice.choice}`;
      }
    }
  }

  /** Makes round `r` (clamped to the rounds shown) the one the keys act on. */
  function setCurrent(r, scroll) {
    const items = [...$('rounds').children];
    if (!items.length) return;
    const shown = items.map((item) => Number(item.dataset.round));
    const target = Math.max(shown[0], Math.min(shown[shown.length - 1], r));
    state.current = shown.includes(target) ? target : shown[0];
    syncControls();
    if (scroll !== false) items[shown.indexOf(state.current)].scrollIntoView({ block: 'nearest' });
  }

  /** Records one accept/reject; once both answers of the current round are decided, moves to the next open round. */
  function decide(r, a, accepted) {
    if (!state.decisions[r] || a >= state.decisions[r].length) return;
    state.decisions[r][a] = accepted;
    if (r === state.current && state.decisions[r].every((d) => d !== null)) {
      const open = firstOpenRound(r + 1);
      setCurrent(open === -1 ? r : open);
    } else {
      syncControls();
    }
  }

  function choose(r, choice) {
    state.choice = { roundIndex: r, choice };
    setCurrent(r);
  }

  /** The first round from `from` on (wrapping around) with an undecided answer, or -1. */
  function firstOpenRound(from) {
    const n = state.decisions.length;
    for (let k = 0; k < n; k++) {
      const r = (from + k) % n;
      if (state.decisions[r].some((d) => d === null)) return r;
    }
    return -1;
  }

  function renderKeysHelp() {
    const kind = state.campaign.taskKind;
    const keys =
      kind === 'ACCEPTANCE'
        ? [[['1', '2'], 'accept / reject A'], [['3', '4'], 'accept / reject B']]
        : kind === 'PAIRWISE'
          ? [[['a', 'b', 't'], 'A better / B better / tie']]
          : [[['Tab'], 'next rating']];
    const all = [...keys, [['↑', '↓'], 'round'], [['c'], 'comment'], [['s'], 'skip'], [['Enter'], 'submit'], [['p'], 'previous'], [['z'], 'zoom']];
    const parts = all.flatMap(([combo, what], i) => [...combo.flatMap((key, k) => (k ? ['/', el('kbd', { textContent: key })] : [el('kbd', { textContent: key })])), ` ${what}${i < all.length - 1 ? ' · ' : ''}`]);
    $('keys-help').replaceChildren('Keys: ', ...parts);
  }

  // ---- Submit and skip ---------------------------------------------------------------------------

  function buildInput() {
    const task = state.task;
    const comment = $('comment').value.trim();
    const input = { itemId: task.item.id, comment: comment || null };
    const kind = state.campaign.taskKind;
    if (kind === 'ACCEPTANCE') {
      const open = firstOpenRound(0);
      if (open !== -1) {
        const a = state.decisions[open].findIndex((d) => d === null);
        setCurrent(open);
        return { problem: `Accept or reject every answer first: ${answerName(open, a)} is open.` };
      }
      input.acceptance = state.decisions.flatMap((answers, roundIndex) => answers.map((accepted, answerIndex) => ({ roundIndex, answerIndex, accepted })));
    } else if (kind === 'PAIRWISE') {
      if (!state.choice) return { problem: 'Choose A, B or tie first.' };
      input.pairwise = { roundIndex: task.otherCandidate ? null : task.item.roundIndex, choice: state.choice.choice };
    } else {
      // Every answer of every round, as the API asks.
      const ratings = [];
      for (const [roundIndex, answers] of state.ratings.entries()) {
        for (const [answerIndex, rating] of answers.entries()) {
          if (rating == null || Number.isNaN(rating) || rating < 0 || rating > 10) {
            setCurrent(roundIndex);
            return { problem: `Rate every answer from 0 to 10 first: ${answerName(roundIndex, answerIndex)} is open.` };
          }
          ratings.push({ roundIndex, answerIndex, rating });
        }
      }
      input.ratings = ratings;
    }
    return { input };
  }

  async function submit() {
    if (!state.task || state.busy) return;
    const { input, problem } = buildInput();
    if (problem) return void showMessage(problem);
    state.busy = true;
    setButtonsDisabled(true);
    try {
      const data = await graphql(SUBMIT, { input });
      const error = userErrorText(data.submitAnnotation);
      if (error) return void showMessage(error);
      const version = data.submitAnnotation.submission.version;
      state.previous = remember(state.task, input, version);
      state.busy = false;
      if (state.resume) {
        resumeTask();
        return void showMessage(`Saved your new version (${version}) of the previous item.`, 'info');
      }
      showMessage(`Saved (version ${version}). Next task…`, 'info');
      await nextTask();
      if (state.task) showMessage(`Saved your judgement (version ${version}).`, 'info');
    } catch (error) {
      showMessage(explain(error));
    } finally {
      state.busy = false;
      setButtonsDisabled(false);
    }
  }

  /** The task as submitted, shaped like a task whose mySubmission is that judgement. */
  function remember(task, input, version) {
    const mySubmission = {
      version,
      comment: input.comment,
      acceptance: input.acceptance || null,
      ratings: input.ratings || null,
      choice: input.pairwise ? input.pairwise.choice : null,
      roundIndex: input.pairwise ? input.pairwise.roundIndex : null,
    };
    return Object.assign({}, task, { leaseExpiresAt: null, mySubmission, campaign: state.campaign });
  }

  /** Opens the task submitted last for a new version; the leased task waits, decisions and all. */
  function editPrevious() {
    if (!state.previous || state.resume || state.busy) return;
    state.resume = {
      task: state.task,
      decisions: state.decisions,
      ratings: state.ratings,
      choice: state.choice,
      current: state.current,
      comment: $('comment').value,
    };
    setTask(state.previous);
  }

  function resumeTask() {
    const back = state.resume;
    if (!back) return;
    state.resume = null;
    setTask(back.task);
    if (!back.task) return;
    state.decisions = back.decisions;
    state.ratings = back.ratings;
    state.choice = back.choice;
    $('comment').value = back.comment;
    setCurrent(back.current);
  }

  function renderPreviousButtons() {
    const editing = Boolean(state.resume);
    for (const button of [$('previous-btn'), $('empty-previous-btn')]) {
      button.hidden = !state.previous || (button.id === 'empty-previous-btn' && editing);
      button.replaceChildren(editing ? 'Back to the current task ' : 'Edit previous ', el('kbd', { textContent: 'p' }));
    }
    $('skip-btn').hidden = editing;
  }

  async function skip() {
    if (!state.task || state.busy || state.resume) return;
    state.busy = true;
    setButtonsDisabled(true);
    try {
      const data = await graphql(SKIP, { input: { itemId: state.task.item.id } });
      const error = userErrorText(data.skipAnnotationTask);
      if (error) return void showMessage(error);
      state.busy = false;
      await nextTask();
      if (state.task) showMessage('Skipped; here is the next one.', 'info');
    } catch (error) {
      showMessage(explain(error));
    } finally {
      state.busy = false;
      setButtonsDisabled(false);
    }
  }

  function setButtonsDisabled(disabled) {
    $('submit-btn').disabled = disabled;
    $('skip-btn').disabled = disabled;
  }

  function toggleZoom() {
    const zoomed = document.body.classList.toggle('zoomed');
    $('figure-zoom').setAttribute('aria-pressed', String(zoomed));
  }

  // ---- Keyboard ----------------------------------------------------------------------------------

  function onKeyDown(event) {
    if (event.altKey || event.metaKey || (event.ctrlKey && event.key !== 'Enter')) return;
    const target = event.target;
    const typing = target instanceof HTMLTextAreaElement || (target instanceof HTMLInputElement && !['radio', 'checkbox'].includes(target.type)) || target instanceof HTMLSelectElement;
    if (target === $('comment')) {
      if (event.key === 'Escape') {
        target.blur();
        event.preventDefault();
      } else if (event.key === 'Enter' && event.ctrlKey) {
        event.preventDefault();
        submit();
      }
      return;
    }
    if (target instanceof HTMLInputElement && target.classList.contains('rating-input') && event.key === 'Enter') {
      event.preventDefault();
      submit();
      return;
    }
    if (!typing && event.key === 'p' && state.previous) {
      event.preventDefault();
      return void (state.resume ? resumeTask() : editPrevious());
    }
    if (typing || !state.task) return;
    // A focused button handles Enter and Space itself (a click); do not submit on top of it.
    if (target instanceof HTMLButtonElement && (event.key === 'Enter' || event.key === ' ')) return;
    const radio = target instanceof HTMLInputElement && target.type === 'radio';
    const kind = state.campaign.taskKind;
    const key = event.key.toLowerCase();
    let handled = true;
    if (kind === 'ACCEPTANCE' && ['1', '2', '3', '4'].includes(key)) {
      const n = Number(key) - 1;
      decide(state.current, n >> 1, n % 2 === 0);
    } else if (kind === 'PAIRWISE' && ['a', 'b', 't'].includes(key)) {
      choose(state.current, key === 't' ? 'TIE' : key.toUpperCase());
    } else if ((key === 'arrowdown' || key === 'j') && !radio) {
      setCurrent(state.current + 1);
    } else if ((key === 'arrowup' || key === 'k') && !radio) {
      setCurrent(state.current - 1);
    } else if (key === 'c') {
      $('comment').focus();
    } else if (key === 's') {
      skip();
    } else if (key === 'enter') {
      submit();
    } else if (key === 'z') {
      toggleZoom();
    } else if (key === 'g') {
      $('guidelines-box').open = !$('guidelines-box').open;
    } else {
      handled = false;
    }
    if (handled) event.preventDefault();
  }

  // ---- Start -------------------------------------------------------------------------------------

  function start() {
    $('key-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const key = $('key-input').value.trim();
      if (key) useKey(key);
    });
    $('forget-key').addEventListener('click', forgetKey);
    $('campaign-select').addEventListener('change', (event) => selectCampaign(event.target.value));
    $('submit-btn').addEventListener('click', submit);
    $('skip-btn').addEventListener('click', skip);
    $('retry-btn').addEventListener('click', nextTask);
    $('previous-btn').addEventListener('click', () => (state.resume ? resumeTask() : editPrevious()));
    $('empty-previous-btn').addEventListener('click', editPrevious);
    $('figure-zoom').addEventListener('click', toggleZoom);
    document.addEventListener('keydown', onKeyDown);
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved) useKey(saved);
    else $('key-input').focus();
  }

  start();
})();

import { parseRatingReply } from '../../src/modules/rating/rating-parser';

describe('parseRatingReply, JSON replies', () => {
  it('parses a bare JSON object', () => {
    const reply = '{"score": 8, "rationale": "Correctly identifies right lower lobe consolidation on the chest X-ray."}';
    expect(parseRatingReply(reply)).toEqual({ kind: 'ok', score: 8, rationale: 'Correctly identifies right lower lobe consolidation on the chest X-ray.' });
  });

  it('parses JSON inside a ```json fence with text around it', () => {
    const reply = [
      'Here is my evaluation of the answer:',
      '```json',
      '{',
      '  "score": 7.5,',
      '  "rationale": "Accurate description of the glandular architecture, but it does not mention {mitotic} activity."',
      '}',
      '```',
      'Let me know if you need anything else.',
    ].join('\n');
    expect(parseRatingReply(reply)).toEqual({
      kind: 'ok',
      score: 7.5,
      rationale: 'Accurate description of the glandular architecture, but it does not mention {mitotic} activity.',
    });
  });

  it.each([
    ['rating / reason', '{"rating": 6, "reason": "Misses the periventricular FLAIR hyperintensities."}'],
    ['score / explanation', '{"score": 6, "explanation": "Misses the periventricular FLAIR hyperintensities."}'],
    ['capitalised keys', '{"Score": 6, "Rationale": "Misses the periventricular FLAIR hyperintensities."}'],
    ['numeric string score', '{"score": "6", "rationale": "Misses the periventricular FLAIR hyperintensities."}'],
  ])('accepts %s', (_name, reply) => {
    expect(parseRatingReply(reply)).toEqual({ kind: 'ok', score: 6, rationale: 'Misses the periventricular FLAIR hyperintensities.' });
  });

  it('allows a missing rationale as an empty string', () => {
    expect(parseRatingReply('{"score": 10}')).toEqual({ kind: 'ok', score: 10, rationale: '' });
  });

  it('accepts the bounds 0 and 10', () => {
    expect(parseRatingReply('{"score": 0, "rationale": "Describes a CT scan; the image is an MRI."}')).toEqual({
      kind: 'ok',
      score: 0,
      rationale: 'Describes a CT scan; the image is an MRI.',
    });
    expect(parseRatingReply('{"score": 10, "rationale": "Complete and accurate."}')).toEqual({ kind: 'ok', score: 10, rationale: 'Complete and accurate.' });
  });

  it.each([
    ['above 10', '{"score": 12, "rationale": "Excellent."}', 'score 12 is outside the 0-10 range'],
    ['below 0', '{"score": -1, "rationale": "Wrong organ."}', 'score -1 is outside the 0-10 range'],
    ['null', '{"score": null, "rationale": "Unclear."}', 'score field is not a number: null'],
    ['a word', '{"score": "high", "rationale": "Good."}', 'score field is not a number: "high"'],
  ])('fails on a score that is %s', (_name, reply, reason) => {
    expect(parseRatingReply(reply)).toEqual({ kind: 'failed', reason });
  });

  it('fails on two JSON objects with different scores', () => {
    const reply = 'First pass: {"score": 8, "rationale": "Good."}\nRevised: {"score": 5, "rationale": "Misses the effusion."}';
    expect(parseRatingReply(reply)).toEqual({ kind: 'failed', reason: 'conflicting scores: 8, 5' });
  });
});

describe('parseRatingReply, text replies', () => {
  it.each([
    ['Score: 8', 8],
    ['Score: 8/10', 8],
    ['Score: 8 / 10', 8],
    ['Rating: 7.5', 7.5],
    ['**Score:** 9', 9],
    ['**Score**: 9', 9],
    ['**Score: 9**', 9],
    ['Overall score: 6 out of 10', 6],
    ['Final rating = 4', 4],
    ['Overall Score (0-10): 3', 3],
    ['score: 0', 0],
  ])('reads %p', (scoreLine, score) => {
    const reply = `${scoreLine}\n\nThe answer correctly localises the lesion to the left temporal lobe.`;
    expect(parseRatingReply(reply)).toEqual({ kind: 'ok', score, rationale: 'The answer correctly localises the lesion to the left temporal lobe.' });
  });

  it('takes the rest of the text as rationale, keeping its paragraphs', () => {
    const reply = [
      'The answer identifies the modality (PA chest radiograph) and the right lower lobe consolidation.',
      '',
      'It does not mention the small right pleural effusion.',
      '',
      '- Score: 7/10',
    ].join('\n');
    expect(parseRatingReply(reply)).toEqual({
      kind: 'ok',
      score: 7,
      rationale: 'The answer identifies the modality (PA chest radiograph) and the right lower lobe consolidation.\n\nIt does not mention the small right pleural effusion.',
    });
  });

  it.each([
    ['Rationale:', '**Score:** 8\n**Rationale:** Accurate description of the Reed-Sternberg cells.'],
    ['Reason:', 'Score: 8\nReason: Accurate description of the Reed-Sternberg cells.'],
    ['Explanation: before the score', 'Explanation: Accurate description of the Reed-Sternberg cells.\n\nScore: 8'],
  ])('takes the %s section as rationale', (_name, reply) => {
    expect(parseRatingReply(reply)).toEqual({ kind: 'ok', score: 8, rationale: 'Accurate description of the Reed-Sternberg cells.' });
  });

  it('ignores the words score and rating in prose', () => {
    const reply = 'Rating scale understood. The answer would score well on accuracy.\nScore: 9';
    expect(parseRatingReply(reply)).toEqual({ kind: 'ok', score: 9, rationale: 'Rating scale understood. The answer would score well on accuracy.' });
  });

  it('accepts the same score stated twice', () => {
    const reply = 'Score: 8\nThe answer is accurate and complete.\nFinal score: 8/10';
    expect(parseRatingReply(reply)).toEqual({ kind: 'ok', score: 8, rationale: 'The answer is accurate and complete.' });
  });

  it('allows an empty rationale', () => {
    expect(parseRatingReply('  **Score:** 5  ')).toEqual({ kind: 'ok', score: 5, rationale: '' });
  });

  it.each([
    ['two different scores', 'Score: 8\nOn reflection the answer misses the pneumothorax.\nScore: 6', 'conflicting scores: 8, 6'],
    ['a score above 10', 'Score: 11/10\nOutstanding answer.', 'score 11 is outside the 0-10 range'],
    ['a negative score', 'Rating: -2\nThe answer describes the wrong organ.', 'score -2 is outside the 0-10 range'],
    ['a percentage', 'Score: 85%\nGood answer.', 'score 85 is outside the 0-10 range'],
    ['another scale', 'Score: 4/5\nGood answer.', 'score 4/5 is not on the 0-10 scale'],
    ['a score without a number', 'Score: N/A\nThe image could not be assessed.', 'score label found but without a numeric value'],
    ['no score at all', 'The answer accurately describes the MRI findings.', 'no score found'],
    ['an empty reply', '', 'no score found'],
  ])('fails on %s', (_name, reply, reason) => {
    expect(parseRatingReply(reply)).toEqual({ kind: 'failed', reason });
  });
});

/**
 * Replies as real judges and people write them (issue 9, item 10): in one run 330 of 345 clearly
 * scored replies of the bare-score form were lost as "no score found".
 */
describe('parseRatingReply, the forms judges actually reply with', () => {
  const WHY = 'The answer identifies the consolidation but does not mention the small pleural effusion.';

  it.each([
    ['a bare score on the first line, rationale after it', `6\n${WHY}`, 6, WHY],
    ['a bare score, a blank line, then the rationale', `6\n\n${WHY}`, 6, WHY],
    ['a number alone', '7', 7, ''],
    ['a number alone with spaces and a newline', '  8 \n', 8, ''],
    ['a decimal alone', '7.5', 7.5, ''],
    ['a number followed by a full stop', `8.\n${WHY}`, 8, WHY],
    ['7/10 alone', '7/10', 7, ''],
    ['7/10 then the rationale', `7/10\n${WHY}`, 7, WHY],
    ['7/10, a dash and the rationale on the same line', `7/10 - ${WHY}`, 7, WHY],
    ['bold 7/10', `**7/10**\n\n${WHY}`, 7, WHY],
    ['8 out of 10 on its own line', `8 out of 10\n${WHY}`, 8, WHY],
    ['the score on the last line', `${WHY}\n\n6`, 6, WHY],
    ['Rating: 7/10', `Rating: 7/10\n${WHY}`, 7, WHY],
    ['Rating - 7', `Rating - 7\n${WHY}`, 7, WHY],
    ['Score — 7/10', `Score — 7/10\n${WHY}`, 7, WHY],
    ['**Score:** 8', `**Score:** 8\n\n${WHY}`, 8, WHY],
    ['markdown headings', `## Score\n8/10\n\n## Rationale\n${WHY}`, 8, WHY],
    ['bold headings', `**Rating**\n7\n\n**Rationale**\n${WHY}`, 7, WHY],
    ['Score: 8 (out of 10)', `Score: 8 (out of 10)\n${WHY}`, 8, WHY],
    ['a bare score and a number inside the rationale', '6\nThe answer mentions 3 lesions but the figure shows 4.', 6, 'The answer mentions 3 lesions but the figure shows 4.'],
    ['a bare score restated as Score:', `8\n${WHY}\nScore: 8`, 8, WHY],
    ['the bounds: 0', '0\nDescribes a CT scan; the image is an MRI.', 0, 'Describes a CT scan; the image is an MRI.'],
    ['the bounds: 10', '10\nComplete and accurate.', 10, 'Complete and accurate.'],
    ['structured output JSON', `{"score":7,"rationale":"${WHY}"}`, 7, WHY],
    ['JSON with spaces', `{"score": 7, "rationale": "${WHY}"}`, 7, WHY],
    ['JSON in a ```json fence', `\`\`\`json\n{"score": 7, "rationale": "${WHY}"}\n\`\`\``, 7, WHY],
  ])('reads %s', (_name, reply, score, rationale) => {
    expect(parseRatingReply(reply)).toEqual({ kind: 'ok', score, rationale });
  });

  it.each([
    ['I would rate this 6 out of 10 because…', `I would rate this 6 out of 10 because ${WHY.toLowerCase()}`, 6],
    ["I'd give this answer a 7/10.", `I'd give this answer a 7/10. ${WHY}`, 7],
    ['I rate the response 8/10', `Overall, I rate the response 8/10: ${WHY}`, 8],
    ['This answer deserves a 5 out of 10', `${WHY} This answer deserves a 5 out of 10.`, 5],
  ])('reads a score stated in a sentence: %s, keeping the whole text as rationale', (_name, reply, score) => {
    expect(parseRatingReply(reply)).toEqual({ kind: 'ok', score, rationale: reply });
  });

  it.each([
    ['a bare score and a different Score:', `6\n${WHY}\nScore: 8`, 'conflicting scores: 6, 8'],
    ['a Score: and a different score in a sentence', `Score: 7\nI would rate this 6 out of 10.`, 'conflicting scores: 7, 6'],
    ['a bare range', `6-7\n${WHY}`, 'score range 6-7 is not a single score'],
    ['a bare range out of 10', `6-7/10\n${WHY}`, 'score range 6-7 is not a single score'],
    ['a labelled range', `Score: 6-7\n${WHY}`, 'score range 6-7 is not a single score'],
    ['a range with "to"', `Rating: 6 to 7 out of 10\n${WHY}`, 'score range 6-7 is not a single score'],
    ['a range in a sentence', `I would rate this 6-7 out of 10. ${WHY}`, 'score range 6-7 is not a single score'],
    ['a bare 11', `11\n${WHY}`, 'score 11 is outside the 0-10 range'],
    ['a bare -1', `-1\n${WHY}`, 'score -1 is outside the 0-10 range'],
    ['a bare 4/5', `4/5\n${WHY}`, 'score 4/5 is not on the 0-10 scale'],
    ['a sentence on another scale', `I would rate this 4 out of 5. ${WHY}`, 'score 4/5 is not on the 0-10 scale'],
    ['a number that is only part of the rationale', 'The answer mentions 3 lesions in the left lobe.', 'no score found'],
    ['a count at the start of a line', '3 lesions are visible and the answer names all of them.', 'no score found'],
    ['a numbered list', '1. Relevance: good\n2. Accuracy: the answer misses the effusion\n3. Clarity: fine', 'no score found'],
    ['a number of examples', 'The answer gives 3 examples of findings seen in the figure.', 'no score found'],
    ['a number after a dash with no scale (a list item as much as a score)', `7 - ${WHY}`, 'no score found'],
    ['a count under a Rating heading', `**Rating**\n3 lesions are named correctly.`, 'no score found'],
    ['a measurement on the last line', `${WHY}\nThe mass measures 4 cm.`, 'no score found'],
  ])('rejects %s', (_name, reply, reason) => {
    expect(parseRatingReply(reply)).toEqual({ kind: 'failed', reason });
  });
});

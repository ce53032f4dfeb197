import { parseRatingReply } from '../src/modules/rating/rating-parser';

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

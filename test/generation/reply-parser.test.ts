import { looksLikeRefusal, parseConversationReply } from '../../src/modules/generation/reply-parser';

const single = (text: string, minRounds = 1) => parseConversationReply(text, { form: 'SINGLE_ANSWER', minRounds });
const two = (text: string, minRounds = 1) => parseConversationReply(text, { form: 'TWO_ANSWERS', minRounds });

const CXR_ROUNDS = [
  { question: 'What imaging modality is shown?', answers: ['This is a frontal (PA) chest radiograph.'] },
  { question: 'Is there any abnormality in the right lower zone?', answers: ['Yes, there is a patchy consolidation in the right lower lobe, consistent with pneumonia.'] },
];

describe('parseConversationReply, single-answer form', () => {
  it('parses the canonical User:/Assistant: format', () => {
    const reply = [
      'User: What imaging modality is shown?',
      'Assistant: This is a frontal (PA) chest radiograph.',
      'User: Is there any abnormality in the right lower zone?',
      'Assistant: Yes, there is a patchy consolidation in the right lower lobe, consistent with pneumonia.',
    ].join('\n');
    expect(single(reply, 2)).toEqual({ kind: 'ok', rounds: CXR_ROUNDS });
  });

  it('keeps inner newlines and paragraphs of multi-line turns, trims the outer whitespace', () => {
    const reply = [
      'User:',
      '  Describe the histological features in this H&E section.  ',
      '',
      'Assistant: The section shows glandular structures lined by atypical columnar cells.',
      '',
      'Key features:',
      '- nuclear pleomorphism',
      '- frequent mitoses',
      '',
      'These findings suggest an adenocarcinoma.   ',
      '',
    ].join('\n');
    expect(single(reply)).toEqual({
      kind: 'ok',
      rounds: [
        {
          question: 'Describe the histological features in this H&E section.',
          answers: [
            'The section shows glandular structures lined by atypical columnar cells.\n\nKey features:\n- nuclear pleomorphism\n- frequent mitoses\n\nThese findings suggest an adenocarcinoma.',
          ],
        },
      ],
    });
  });

  it('handles Windows line endings', () => {
    const reply = 'User: Which sequence is this MRI?\r\nAssistant: An axial T2-weighted FLAIR sequence.\r\n';
    expect(single(reply)).toEqual({ kind: 'ok', rounds: [{ question: 'Which sequence is this MRI?', answers: ['An axial T2-weighted FLAIR sequence.'] }] });
  });

  it.each([
    ['**User:** / **Assistant:**', '**User:** What imaging modality is shown?', '**Assistant:** This is a frontal (PA) chest radiograph.'],
    ['**User**: / **Assistant**:', '**User**: What imaging modality is shown?', '**Assistant**: This is a frontal (PA) chest radiograph.'],
    ['__User:__ / __Assistant:__', '__User:__ What imaging modality is shown?', '__Assistant:__ This is a frontal (PA) chest radiograph.'],
    ['numbered', '1. User: What imaging modality is shown?', '2. Assistant: This is a frontal (PA) chest radiograph.'],
    ['bulleted', '- User: What imaging modality is shown?', '- Assistant: This is a frontal (PA) chest radiograph.'],
    ['headings', '### User: What imaging modality is shown?', '### Assistant: This is a frontal (PA) chest radiograph.'],
    ['numbered and bold', '1. **User:** What imaging modality is shown?', '   **Assistant:** This is a frontal (PA) chest radiograph.'],
    ['Q:/A:', 'Q: What imaging modality is shown?', 'A: This is a frontal (PA) chest radiograph.'],
    ['Question:/Answer:', 'Question: What imaging modality is shown?', 'Answer: This is a frontal (PA) chest radiograph.'],
    ['Human:/GPT:', 'Human: What imaging modality is shown?', 'GPT: This is a frontal (PA) chest radiograph.'],
    ['Human:/Assistant:', 'Human: What imaging modality is shown?', 'Assistant: This is a frontal (PA) chest radiograph.'],
    ['Human:/AI:', 'Human: What imaging modality is shown?', 'AI: This is a frontal (PA) chest radiograph.'],
    ['lower case with a space before the colon', 'user : What imaging modality is shown?', 'assistant : This is a frontal (PA) chest radiograph.'],
    ['upper case', 'USER: What imaging modality is shown?', 'ASSISTANT: This is a frontal (PA) chest radiograph.'],
  ])('accepts the %s variant', (_name, userLine, assistantLine) => {
    expect(single(`${userLine}\n${assistantLine}`)).toEqual({ kind: 'ok', rounds: [CXR_ROUNDS[0]] });
  });

  it('treats Question 1:/Answer 1: as numbered rounds, not alternative answers', () => {
    const reply = [
      'Question 1: What imaging modality is shown?',
      'Answer 1: This is a frontal (PA) chest radiograph.',
      'Question 2: Is there any abnormality in the right lower zone?',
      'Answer 2: Yes, there is a patchy consolidation in the right lower lobe, consistent with pneumonia.',
    ].join('\n');
    expect(single(reply, 2)).toEqual({ kind: 'ok', rounds: CXR_ROUNDS });
  });

  it('treats Q1:/A1: as numbered rounds', () => {
    const reply = [
      'Q1: What imaging modality is shown?',
      'A1: This is a frontal (PA) chest radiograph.',
      'Q2: Is there any abnormality in the right lower zone?',
      'A2: Yes, there is a patchy consolidation in the right lower lobe, consistent with pneumonia.',
    ].join('\n');
    expect(single(reply, 2)).toEqual({ kind: 'ok', rounds: CXR_ROUNDS });
  });

  it('strips bold markers around the label only, not from the content', () => {
    const reply = '**User**: Which structure is **enhancing** here?\n**Assistant:** The **left parietal** lesion shows ring enhancement.';
    expect(single(reply)).toEqual({
      kind: 'ok',
      rounds: [{ question: 'Which structure is **enhancing** here?', answers: ['The **left parietal** lesion shows ring enhancement.'] }],
    });
  });

  it('accepts the label alone on its line with the content below it', () => {
    const reply = '**User:**\nWhat stain was used?\n\n**Assistant:**\nA Ziehl-Neelsen stain; the red rods are acid-fast bacilli.';
    expect(single(reply)).toEqual({
      kind: 'ok',
      rounds: [{ question: 'What stain was used?', answers: ['A Ziehl-Neelsen stain; the red rods are acid-fast bacilli.'] }],
    });
  });

  it('ignores a preamble, code fences, and commentary after a separator', () => {
    const reply = [
      'Sure! Here is the conversation about the chest X-ray:',
      '',
      '```',
      'User: What imaging modality is shown?',
      'Assistant: This is a frontal (PA) chest radiograph.',
      'User: Is there any abnormality in the right lower zone?',
      'Assistant: Yes, there is a patchy consolidation in the right lower lobe, consistent with pneumonia.',
      '```',
      '',
      'I hope this conversation is useful for training.',
    ].join('\n');
    expect(single(reply, 2)).toEqual({ kind: 'ok', rounds: CXR_ROUNDS });
  });

  it('drops commentary after a horizontal rule and round headers between rounds', () => {
    const reply = [
      '## Round 1',
      'User: What imaging modality is shown?',
      'Assistant: This is a frontal (PA) chest radiograph.',
      '',
      '**Round 2**',
      'User: Is there any abnormality in the right lower zone?',
      'Assistant: Yes, there is a patchy consolidation in the right lower lobe, consistent with pneumonia.',
      '',
      '---',
      'Note: the answers avoid speculating about the clinical history.',
    ].join('\n');
    expect(single(reply, 2)).toEqual({ kind: 'ok', rounds: CXR_ROUNDS });
  });

  it('ignores an assistant turn that comes before the first question', () => {
    const reply = 'Assistant: Here is a conversation.\nUser: What imaging modality is shown?\nAssistant: This is a frontal (PA) chest radiograph.';
    expect(single(reply)).toEqual({ kind: 'ok', rounds: [CXR_ROUNDS[0]] });
  });

  it('joins two consecutive assistant turns with a blank line', () => {
    const reply = [
      'User: What does the MRI show?',
      'Assistant: An axial T1 post-contrast image with a ring-enhancing lesion in the right frontal lobe.',
      'Assistant: The differential includes glioblastoma, metastasis and abscess.',
    ].join('\n');
    expect(single(reply)).toEqual({
      kind: 'ok',
      rounds: [
        {
          question: 'What does the MRI show?',
          answers: ['An axial T1 post-contrast image with a ring-enhancing lesion in the right frontal lobe.\n\nThe differential includes glioblastoma, metastasis and abscess.'],
        },
      ],
    });
  });

  it('does not treat "I cannot determine" inside an answer as a refusal', () => {
    const reply = [
      'User: What is the tumour grade in this biopsy?',
      "Assistant: I cannot determine the grade with confidence from a single low-power field; higher magnification would be needed to count mitoses.",
    ].join('\n');
    expect(single(reply)).toEqual({
      kind: 'ok',
      rounds: [
        {
          question: 'What is the tumour grade in this biopsy?',
          answers: ["I cannot determine the grade with confidence from a single low-power field; higher magnification would be needed to count mitoses."],
        },
      ],
    });
  });

  it('fails with the rounds so far when there are fewer than minRounds', () => {
    const reply = [
      'User: What imaging modality is shown?',
      'Assistant: This is a frontal (PA) chest radiograph.',
      'User: Is there any abnormality in the right lower zone?',
      'Assistant: Yes, there is a patchy consolidation in the right lower lobe, consistent with pneumonia.',
    ].join('\n');
    expect(single(reply, 4)).toEqual({ kind: 'parse_failed', reason: 'expected at least 4 rounds, got 2', rounds: CXR_ROUNDS });
  });

  it('fails on a question without an answer, naming the round and keeping the earlier rounds', () => {
    const reply = [
      'User: What imaging modality is shown?',
      'Assistant: This is a frontal (PA) chest radiograph.',
      'User: Is the heart enlarged?',
      'User: Is there a pleural effusion?',
      'Assistant: No, the costophrenic angles are sharp.',
    ].join('\n');
    expect(single(reply)).toEqual({ kind: 'parse_failed', reason: 'round 2: no answer', rounds: [CXR_ROUNDS[0]] });
  });

  it('fails on an empty question', () => {
    const reply = 'User:\nAssistant: This is a frontal (PA) chest radiograph.';
    expect(single(reply)).toEqual({ kind: 'parse_failed', reason: 'round 1: empty question', rounds: [] });
  });

  it('fails when alternative answers A/B appear in the single-answer form', () => {
    const reply = [
      'User: What imaging modality is shown?',
      'Assistant: This is a frontal (PA) chest radiograph.',
      'User: Is the heart enlarged?',
      'Answer A: No, the cardiothoracic ratio is under 0.5.',
      'Answer B: The heart size is within normal limits.',
    ].join('\n');
    expect(single(reply)).toEqual({
      kind: 'parse_failed',
      reason: 'round 2: found alternative answers (A/B) but one answer was expected',
      rounds: [CXR_ROUNDS[0]],
    });
  });

  it('reports a reply without any turns', () => {
    const reply = 'The image is a chest radiograph showing right lower lobe consolidation.';
    expect(single(reply)).toEqual({ kind: 'parse_failed', reason: 'no User/Assistant turns found', rounds: [] });
  });

  it('reports a refusal with the trimmed text as reason', () => {
    const reply = "\n  I'm sorry, but I can't help with identifying the person in this photograph.  \n";
    expect(single(reply)).toEqual({ kind: 'refused', reason: "I'm sorry, but I can't help with identifying the person in this photograph." });
  });

  it('cuts the refusal reason at 500 characters', () => {
    const reply = `I cannot help with this request. ${'The image appears to contain identifiable patient information. '.repeat(20)}`;
    const parsed = single(reply);
    expect(parsed.kind).toBe('refused');
    expect(parsed.kind === 'refused' && parsed.reason).toBe(reply.trim().slice(0, 500));
    expect(parsed.kind === 'refused' && parsed.reason.length).toBe(500);
  });

  it('parses the turns even when the reply opens with an apology', () => {
    const reply = [
      "I'm sorry, I can't provide a diagnosis, but here is an educational conversation:",
      'User: What imaging modality is shown?',
      'Assistant: This is a frontal (PA) chest radiograph.',
    ].join('\n');
    expect(single(reply)).toEqual({ kind: 'ok', rounds: [CXR_ROUNDS[0]] });
  });
});

describe('parseConversationReply, two-answer form', () => {
  const HISTOLOGY_ROUNDS = [
    {
      question: 'What tissue is shown in this H&E slide?',
      answers: ['Hepatic parenchyma with portal tracts.', 'This is liver tissue; hepatocytes are arranged in plates around a central vein.'],
    },
    {
      question: 'Is there evidence of steatosis?',
      answers: ['Yes, there are large lipid vacuoles in many hepatocytes.', 'Macrovesicular steatosis involves roughly 30% of hepatocytes.'],
    },
  ];

  it('parses the canonical User:/Answer A:/Answer B: format', () => {
    const reply = [
      'User: What tissue is shown in this H&E slide?',
      'Answer A: Hepatic parenchyma with portal tracts.',
      'Answer B: This is liver tissue; hepatocytes are arranged in plates around a central vein.',
      'User: Is there evidence of steatosis?',
      'Answer A: Yes, there are large lipid vacuoles in many hepatocytes.',
      'Answer B: Macrovesicular steatosis involves roughly 30% of hepatocytes.',
    ].join('\n');
    expect(two(reply, 2)).toEqual({ kind: 'ok', rounds: HISTOLOGY_ROUNDS });
  });

  it.each([
    ['Assistant A:/Assistant B:', 'Assistant A:', 'Assistant B:'],
    ['Assistant (A):/Assistant (B):', 'Assistant (A):', 'Assistant (B):'],
    ['Answer 1:/Answer 2:', 'Answer 1:', 'Answer 2:'],
    ['A1:/A2:', 'A1:', 'A2:'],
    ['**Answer A:**/**Answer B:**', '**Answer A:**', '**Answer B:**'],
    ['**Answer A**:/**Answer B**:', '**Answer A**:', '**Answer B**:'],
    ['- **Assistant (A)**:', '- **Assistant (A)**:', '- **Assistant (B)**:'],
    ['plain Assistant: twice', 'Assistant:', 'Assistant:'],
  ])('accepts the %s variant', (_name, labelA, labelB) => {
    const reply = [
      '**User:** What tissue is shown in this H&E slide?',
      `${labelA} Hepatic parenchyma with portal tracts.`,
      `${labelB} This is liver tissue; hepatocytes are arranged in plates around a central vein.`,
    ].join('\n');
    expect(two(reply)).toEqual({ kind: 'ok', rounds: [HISTOLOGY_ROUNDS[0]] });
  });

  it('places answers by their label when B comes before A', () => {
    const reply = [
      'User: What tissue is shown in this H&E slide?',
      'Answer B: This is liver tissue; hepatocytes are arranged in plates around a central vein.',
      'Answer A: Hepatic parenchyma with portal tracts.',
    ].join('\n');
    expect(two(reply)).toEqual({ kind: 'ok', rounds: [HISTOLOGY_ROUNDS[0]] });
  });

  it('reads Question 1:/Answer 1:/Answer 2: as one round with two alternatives', () => {
    const reply = [
      'Question 1: What tissue is shown in this H&E slide?',
      'Answer 1: Hepatic parenchyma with portal tracts.',
      'Answer 2: This is liver tissue; hepatocytes are arranged in plates around a central vein.',
    ].join('\n');
    expect(two(reply)).toEqual({ kind: 'ok', rounds: [HISTOLOGY_ROUNDS[0]] });
  });

  it('keeps multi-line alternative answers', () => {
    const reply = [
      'User: Describe the findings on this knee MRI.',
      'Answer A: There is a complex tear of the posterior horn of the medial meniscus.',
      '',
      'A small joint effusion is also present.',
      'Answer B: Findings:',
      '1. Medial meniscal tear',
      '2. Joint effusion',
    ].join('\n');
    expect(two(reply)).toEqual({
      kind: 'ok',
      rounds: [
        {
          question: 'Describe the findings on this knee MRI.',
          answers: [
            'There is a complex tear of the posterior horn of the medial meniscus.\n\nA small joint effusion is also present.',
            'Findings:\n1. Medial meniscal tear\n2. Joint effusion',
          ],
        },
      ],
    });
  });

  it('does not take a bare B: line for the second answer', () => {
    const reply = [
      'User: What tissue is shown in this H&E slide?',
      'A: Hepatic parenchyma with portal tracts.',
      'B: Liver tissue with hepatocyte plates.',
    ].join('\n');
    expect(two(reply)).toEqual({ kind: 'parse_failed', reason: 'round 1: expected 2 answers, got 1', rounds: [] });
  });

  it('fails on a round with a single answer, keeping the complete rounds before it', () => {
    const reply = [
      'User: What tissue is shown in this H&E slide?',
      'Answer A: Hepatic parenchyma with portal tracts.',
      'Answer B: This is liver tissue; hepatocytes are arranged in plates around a central vein.',
      'User: Is there evidence of steatosis?',
      'Answer A: Yes, there are large lipid vacuoles in many hepatocytes.',
      'User: Is there fibrosis?',
      'Answer A: Bridging fibrosis is seen.',
      'Answer B: There is portal-to-portal fibrosis.',
    ].join('\n');
    expect(two(reply)).toEqual({ kind: 'parse_failed', reason: 'round 2: expected 2 answers, got 1', rounds: [HISTOLOGY_ROUNDS[0]] });
  });

  it('fails on a round with three answers', () => {
    const reply = 'User: What tissue is this?\nAnswer A: Liver.\nAnswer B: Hepatic tissue.\nAssistant: Liver parenchyma.';
    expect(two(reply)).toEqual({ kind: 'parse_failed', reason: 'round 1: expected 2 answers, got 3', rounds: [] });
  });

  it('fails when the same alternative is given twice', () => {
    const reply = 'User: What tissue is this?\nAnswer A: Liver.\nAnswer A: Hepatic tissue.';
    expect(two(reply)).toEqual({ kind: 'parse_failed', reason: 'round 1: answer A given twice', rounds: [] });
  });

  it('fails when one alternative is empty', () => {
    const reply = 'User: What tissue is this?\nAnswer A: Liver parenchyma.\nAnswer B:\n';
    expect(two(reply)).toEqual({ kind: 'parse_failed', reason: 'round 1: answer B is empty', rounds: [] });
  });

  it('fails when there are fewer than minRounds', () => {
    const reply = 'User: What tissue is this?\nAnswer A: Liver parenchyma.\nAnswer B: Hepatic tissue.';
    expect(two(reply, 3)).toEqual({
      kind: 'parse_failed',
      reason: 'expected at least 3 rounds, got 1',
      rounds: [{ question: 'What tissue is this?', answers: ['Liver parenchyma.', 'Hepatic tissue.'] }],
    });
  });

  it('reports a refusal', () => {
    expect(two('As an AI, I am unable to interpret medical images for diagnosis.')).toEqual({
      kind: 'refused',
      reason: 'As an AI, I am unable to interpret medical images for diagnosis.',
    });
  });
});

describe('looksLikeRefusal', () => {
  it.each([
    "I'm sorry, but I can't assist with that.",
    'I’m sorry, but I can’t analyze this image.',
    'I cannot help with identifying people in medical images.',
    "I can't assist with that request.",
    'As an AI, I am unable to provide medical diagnoses.',
    "I'm unable to provide a conversation about this image.",
    'I AM SORRY, BUT I CANNOT COMPLY.',
    'Sorry about that. I cannot help with this request.',
  ])('detects %p', (text) => {
    expect(looksLikeRefusal(text)).toBe(true);
  });

  it.each([
    'The radiograph shows a right-sided pneumothorax. I cannot determine its size without a lateral view.',
    'User: What is shown?\nAssistant: A CT scan of the abdomen.',
    '',
  ])('does not flag %p', (text) => {
    expect(looksLikeRefusal(text)).toBe(false);
  });

  it('only looks near the start of the reply', () => {
    const lateApology = `${'The image shows a mammogram with scattered fibroglandular density. '.repeat(4)}I'm sorry, but I can't comment further.`;
    expect(lateApology.indexOf("I'm sorry")).toBeGreaterThan(200);
    expect(looksLikeRefusal(lateApology)).toBe(false);
    expect(single(lateApology)).toEqual({ kind: 'parse_failed', reason: 'no User/Assistant turns found', rounds: [] });
  });
});

import { Modality } from '../../src/modules/images/modality';
import { toGlobalId } from '../../src/platform/ids';
import { TestApp, TestProject } from './test-app';
import { readDemonstrations, readSharedImage, SHARED_IMAGE_NAMES } from './shared-data';
import { gql } from './graphql-client';

/** Captions for the five shared images, so prompts and replies can be told apart. */
export const FIGURE_CAPTIONS: Record<string, { caption: string; mentions: string[]; modalities: Modality[] }> = {
  'bio_patch.png': { caption: 'Histology patch stained with hematoxylin and eosin showing glandular tissue.', mentions: ['Figure 1 shows the H&E patch.'], modalities: [Modality.HISTOLOGY] },
  'med_img_1.png': { caption: 'Axial MRI of the brain with a hyperintense lesion in the left frontal lobe.', mentions: ['The lesion is visible in Figure 2.'], modalities: [Modality.MRI] },
  'synpic32933.jpg': { caption: 'Frontal chest radiograph showing a right lower lobe consolidation.', mentions: [], modalities: [Modality.CHEST_XRAY] },
  'synpic42202.jpg': { caption: 'Contrast-enhanced CT of the abdomen showing a hypodense liver mass.', mentions: ['Figure 4 demonstrates the mass.', 'It measured 4 cm.'], modalities: [Modality.CT] },
  'xy_chromosome.jpg': { caption: 'Karyotype image of human X and Y chromosomes.', mentions: ['See Figure 5.'], modalities: [Modality.OTHER] },
};

/** The 58 clinician demonstrations (records only) and the 5 shared images uploaded as generation targets. */
export async function seedPipeline(app: TestApp, project: TestProject, options: { demonstrations?: boolean } = {}): Promise<{ imageIds: string[]; imageGlobalIds: string[] }> {
  const ctx = project.ctx();
  if (options.demonstrations !== false) {
    const result = await app.services.recordsImport.import(ctx, readDemonstrations(), [], { createDemonstrations: true });
    if (result.recordErrors.length) throw new Error(`demonstration import failed: ${JSON.stringify(result.recordErrors[0])}`);
  }
  const imageIds: string[] = [];
  for (const name of SHARED_IMAGE_NAMES) {
    const image = await app.services.images.upload(ctx, readSharedImage(name), name, FIGURE_CAPTIONS[name]);
    imageIds.push(image.id);
  }
  return { imageIds, imageGlobalIds: imageIds.map((id) => toGlobalId('Image', id)) };
}

export const START_GENERATION = `mutation($input: StartGenerationRunInput!) {
  startGenerationRun(input: $input) { run { id kind status total done failed params } userErrors { field message code } }
}`;

export const RUN_STATE = `query($id: ID!) { node(id: $id) { ... on Run { id status total done failed queued promptTokens completionTokens costUsd lastError startedAt finishedAt } } }`;

/** Polls the run over HTTP until it ends, as a notebook would. */
export async function waitForRun(app: TestApp, key: string, runId: string, timeoutMs = 30000): Promise<Record<string, any>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await gql(app.graphqlUrl, key, RUN_STATE, { id: runId });
    const run = res.data?.node;
    if (!run) throw new Error(`run not readable: ${JSON.stringify(res.errors)}`);
    if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(run.status)) return run;
    if (Date.now() > deadline) throw new Error(`run still ${run.status} after ${timeoutMs} ms: ${JSON.stringify(run)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

import fs from 'node:fs';
import path from 'node:path';

/** The project's root folder, so tests in any folder under test/ find src/, migrations/ and scripts without counting '..'. */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
/** The shared folder beside the project (../shared): reference data, checks; tests read it in place. */
export const SHARED_ROOT = path.resolve(PROJECT_ROOT, '..', 'shared');
export const SHARED_DATA = path.join(SHARED_ROOT, 'data');
export const SHARED_IMAGES = path.join(SHARED_DATA, 'images');
export const SHARED_IMAGE_NAMES = ['bio_patch.png', 'med_img_1.png', 'synpic32933.jpg', 'synpic42202.jpg', 'xy_chromosome.jpg'];

export function readSharedImage(name: string): Buffer {
  return fs.readFileSync(path.join(SHARED_IMAGES, name));
}

export function readDemonstrations(): Record<string, any>[] {
  return JSON.parse(fs.readFileSync(path.join(SHARED_DATA, 'clinician-demonstrations.json'), 'utf8'));
}

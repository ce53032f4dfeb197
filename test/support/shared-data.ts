import fs from 'node:fs';
import path from 'node:path';

/** The shared reference data lives beside the project (../shared/data); tests read it in place. */
export const SHARED_DATA = path.resolve(__dirname, '..', '..', '..', 'shared', 'data');
export const SHARED_IMAGES = path.join(SHARED_DATA, 'images');
export const SHARED_IMAGE_NAMES = ['bio_patch.png', 'med_img_1.png', 'synpic32933.jpg', 'synpic42202.jpg', 'xy_chromosome.jpg'];

export function readSharedImage(name: string): Buffer {
  return fs.readFileSync(path.join(SHARED_IMAGES, name));
}

export function readDemonstrations(): Record<string, any>[] {
  return JSON.parse(fs.readFileSync(path.join(SHARED_DATA, 'clinician-demonstrations.json'), 'utf8'));
}

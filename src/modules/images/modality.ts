import { registerEnumType } from 'type-graphql';

export enum Modality {
  CHEST_XRAY = 'CHEST_XRAY',
  MRI = 'MRI',
  CT = 'CT',
  HISTOLOGY = 'HISTOLOGY',
  GROSS = 'GROSS',
  OTHER = 'OTHER',
}
registerEnumType(Modality, { name: 'Modality', description: 'Imaging modality of a figure (one or more).' });

export enum ImageSource {
  UPLOAD = 'UPLOAD',
  URL = 'URL',
  IMPORT = 'IMPORT',
}
registerEnumType(ImageSource, { name: 'ImageSource' });

/** The `domain` flags of LLaVA-Med / BioMed-VITAL records, mapped to modalities. */
export const DOMAIN_FLAG_MODALITY: Record<string, Modality> = {
  chest_xray: Modality.CHEST_XRAY,
  mri: Modality.MRI,
  ct_scan: Modality.CT,
  histology: Modality.HISTOLOGY,
  gross: Modality.GROSS,
};

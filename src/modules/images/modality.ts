import { registerEnumType } from 'type-graphql';

export enum Modality {
  CHEST_XRAY = 'CHEST_XRAY',
  MRI = 'MRI',
  CT = 'CT',
  HISTOLOGY = 'HISTOLOGY',
  GROSS = 'GROSS',
  OTHER = 'OTHER',
}
registerEnumType(Modality, {
  name: 'Modality',
  description: 'Imaging modality of a figure (one or more).',
  valuesConfig: {
    CHEST_XRAY: { description: 'Chest X-ray.' },
    MRI: { description: 'Magnetic resonance imaging.' },
    CT: { description: 'Computed tomography.' },
    HISTOLOGY: { description: 'Microscopy of stained tissue.' },
    GROSS: { description: 'Gross pathology: photographs of specimens or lesions.' },
    OTHER: { description: 'Any other figure.' },
  },
});

export enum ImageSource {
  UPLOAD = 'UPLOAD',
  URL = 'URL',
  IMPORT = 'IMPORT',
}
registerEnumType(ImageSource, {
  name: 'ImageSource',
  description: 'How an image reached the project.',
  valuesConfig: {
    UPLOAD: { description: 'Uploaded with uploadImage.' },
    URL: { description: 'Fetched from a URL given to uploadImage or importRecords.' },
    IMPORT: { description: 'Created by importRecords (or the import command), with or without its file.' },
  },
});

/** The `domain` flags of LLaVA-Med / BioMed-VITAL records, mapped to modalities. */
export const DOMAIN_FLAG_MODALITY: Record<string, Modality> = {
  chest_xray: Modality.CHEST_XRAY,
  mri: Modality.MRI,
  ct_scan: Modality.CT,
  histology: Modality.HISTOLOGY,
  gross: Modality.GROSS,
};

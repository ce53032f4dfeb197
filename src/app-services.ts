import { DataSource } from 'typeorm';
import { AppConfig } from './platform/config';
import { BlobStorage, PostgresBlobStorage } from './platform/storage';
import { UrlSigner } from './platform/signing';
import { AuthService } from './modules/projects/auth.service';
import { ProjectsService } from './modules/projects/projects.service';
import { ImagesService } from './modules/images/images.service';
import { DemonstrationsService } from './modules/demonstrations/demonstrations.service';
import { RecordsImportService } from './modules/demonstrations/records-import.service';
import { CandidatesService } from './modules/candidates/candidates.service';
import { PreferencesService } from './modules/preferences/preferences.service';
import { SelectorsService } from './modules/selectors/selectors.service';
import { ScoringService } from './modules/scoring/scoring.service';
import { DatasetsService } from './modules/datasets/datasets.service';
import { RunsService } from './modules/runs/runs.service';

/** The composition root: one instance of each service per process, built from the database and config. */
export interface AppServices {
  ds: DataSource;
  config: AppConfig;
  storage: BlobStorage;
  signer: UrlSigner;
  auth: AuthService;
  projects: ProjectsService;
  images: ImagesService;
  demonstrations: DemonstrationsService;
  recordsImport: RecordsImportService;
  candidates: CandidatesService;
  preferences: PreferencesService;
  selectors: SelectorsService;
  scoring: ScoringService;
  datasets: DatasetsService;
  runs: RunsService;
}

export function createServices(ds: DataSource, config: AppConfig, signer: UrlSigner): AppServices {
  const storage = new PostgresBlobStorage(ds);
  const images = new ImagesService(ds, storage, { maxBytes: config.MAX_UPLOAD_BYTES, maxPixels: config.MAX_IMAGE_PIXELS, maxSide: config.MAX_IMAGE_SIDE }, config.THUMBNAIL_SIZE);
  const demonstrations = new DemonstrationsService(ds);
  const candidates = new CandidatesService(ds);
  return {
    ds,
    config,
    storage,
    signer,
    auth: new AuthService(ds),
    projects: new ProjectsService(ds),
    images,
    demonstrations,
    recordsImport: new RecordsImportService(ds, images, demonstrations),
    candidates,

    preferences: new PreferencesService(ds, candidates),
    selectors: new SelectorsService(ds),
    scoring: new ScoringService(ds),
    datasets: new DatasetsService(ds),
    runs: new RunsService(ds),
  };
}

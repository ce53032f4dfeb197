/** Selector training data: preference pairs and the validation split (issue 11); the training runs' service. */
export * from './preference-pairs';
export { TrainingService } from './training.service';
export type { TrainingParams, TrainingDataSummary, EpochRecord } from './training.service';

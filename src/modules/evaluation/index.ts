/** Evaluation statistics: how aligned a selector or a model judge is with clinicians (issue 11). */
export * from './alignment-metrics';
export * from './bootstrap';

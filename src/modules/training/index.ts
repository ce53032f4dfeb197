/** Selector training data: preference pairs and the validation split (issue 11). */
export * from './preference-pairs';

/** Inter-annotator agreement statistics (issue 12). */
export * from './agreement';

/**
 * A page of candidates with their image, scores and preferences: the widest read the API serves.
 * The N+1 test counts its statements and the cost limit test prices it, so both speak of one query.
 */
export const CANDIDATE_PAGE_QUERY = `query($first: Int!, $sel: ID!) {
  candidates(first: $first) {
    totalCount
    edges { node {
      id status
      image { id caption modalities thumbnailUrl candidateCount }
      scores(first: 5) { totalCount edges { node { value selectorModel { name } } } }
      score(selectorModelId: $sel)
      preferenceCount
      preferences(first: 3) { edges { node { kind source annotator { email } } } }
    } }
  }
}`;

export interface GraphQLResponse<T = Record<string, any>> {
  status: number;
  data: T | null | undefined;
  errors?: { message: string; path?: string[]; extensions?: Record<string, any> }[];
}

/** A GraphQL request over real HTTP, as a notebook or browser would send it. */
export async function gql<T = Record<string, any>>(url: string, key: string | null, query: string, variables: Record<string, unknown> = {}): Promise<GraphQLResponse<T>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T | null; errors?: GraphQLResponse["errors"] };
  return { status: res.status, data: body.data, errors: body.errors };
}

export interface UploadFile {
  /** Where the file goes in the variables, e.g. `input.file` or `input.images.0`. */
  path: string;
  name: string;
  bytes: Buffer;
  type?: string;
}

/**
 * A GraphQL multipart request (github.com/jaydenseric/graphql-multipart-request-spec), with the
 * header Apollo's CSRF prevention asks of non-JSON requests.
 */
export async function gqlUpload<T = Record<string, any>>(
  url: string,
  key: string | null,
  query: string,
  variables: Record<string, unknown>,
  files: UploadFile[],
): Promise<GraphQLResponse<T>> {
  const form = new FormData();
  form.append('operations', JSON.stringify({ query, variables }));
  form.append('map', JSON.stringify(Object.fromEntries(files.map((f, i) => [String(i), [`variables.${f.path}`]]))));
  files.forEach((f, i) => form.append(String(i), new Blob([new Uint8Array(f.bytes)], { type: f.type ?? 'application/octet-stream' }), f.name));
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'apollo-require-preflight': 'true', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: form,
  });
  const body = (await res.json()) as { data?: T | null; errors?: GraphQLResponse["errors"] };
  return { status: res.status, data: body.data, errors: body.errors };
}

export function errorCodes(res: GraphQLResponse): string[] {
  return (res.errors ?? []).map((e) => String(e.extensions?.code));
}

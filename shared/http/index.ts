// Public door of shared/http.

export type { HttpResponse, RequestOptions } from './client.ts';
export { httpRequestRaw, requestJson } from './client.ts';

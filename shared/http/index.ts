// Public door of shared/http.

export type { BodyLimitOptions } from './body-limit.ts';
export { BODY_LIMIT_DEFAULTS, bodyLimit, readBody, readBodyText, readNodeBody } from './body-limit.ts';
export type { HttpResponse, RequestOptions } from './client.ts';
export { httpRequestRaw, requestJson } from './client.ts';

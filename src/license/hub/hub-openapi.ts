// GET /openapi.json of the restore hub (DESIGN.md "License containers": the restore hub is an HTTP service of the same
// kind as the issuing back end): an OpenAPI 3.1 document written from the same route table and shapes the service
// registers (hub-routes.ts), so every route is described exactly as it is checked.
import { openApiPath } from '../issuing/index.js';
import type { HubRoute } from './hub-routes.js';
import { errorAnswer, passedAnswer, type HubSchema } from './hub-schemas.js';

export const HUB_OPENAPI_PATH = '/openapi.json';

const json = (schema: HubSchema) => ({ 'application/json': { schema } });

function parameters(shape: HubSchema | undefined, where: 'path' | 'query'): unknown[] {
  const fields = (shape ?? {}) as { readonly properties?: unknown; readonly required?: unknown };
  const properties = fields.properties;
  if (typeof properties !== 'object' || properties === null) return [];
  const required = Array.isArray(fields.required) ? (fields.required as string[]) : [];
  return Object.entries(properties).map(([name, schema]) => ({ name, in: where, required: where === 'path' || required.includes(name), schema }));
}

function operation(route: HubRoute): Record<string, unknown> {
  const errors: Record<string, unknown> = {
    400: { description: 'malformed request, backup or target (reason input)', content: json(errorAnswer) },
    404: { description: 'unknown job, or a licensor not registered (reason no-license)', content: json(errorAnswer) },
    409: { description: 'refused by state: a registration or lock report older than one taken (replayed), a serial not locked (input)', content: json(errorAnswer) },
    413: { description: 'body larger than the route takes (reason limit)', content: json(errorAnswer) },
    429: { description: 'rate limit, or too many restore jobs at once (reason limit); Retry-After says when to ask again', content: json(errorAnswer) },
  };
  if (route.auth !== 'none') errors[401] = { description: route.auth === 'admin' ? 'missing or wrong admin token (reason unauthenticated)' : 'missing licensor API key (reason unauthenticated)', content: json(errorAnswer) };
  if (route.url === '/v1/licensors' || route.url === '/v1/locks') errors[422] = { description: 'not signed by the licensor key it names (reason signature)', content: json(errorAnswer) };
  if (route.url === '/v1/locks' && route.method === 'POST') errors[403] = { description: 'the licensor is not registered at this hub (reason unauthenticated)', content: json(errorAnswer) };
  if (route.answer === passedAnswer) errors[502] = { description: 'the licensor\'s service did not answer (reason unavailable)', content: json(errorAnswer) };
  if (route.method === 'GET') delete errors[413];
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.auth === 'none' ? {} : { security: [{ [route.auth === 'admin' ? 'adminToken' : 'licensorKey']: [] }] }),
    ...(route.params === undefined && route.querystring === undefined ? {} : { parameters: [...parameters(route.params, 'path'), ...parameters(route.querystring, 'query')] }),
    ...(route.body === undefined ? {} : { requestBody: { required: true, content: json(route.body) } }),
    responses: { [route.status]: { description: 'done', content: json(route.answer) }, ...errors },
  };
}

/** The OpenAPI 3.1 document of `routes` (plus the page and this document). */
export function hubOpenApi(routes: readonly HubRoute[], version = '1'): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {
    '/': { get: { operationId: 'page', summary: 'the self-service page (restore, transfer, reactivation; licensor alerts)', responses: { 200: { description: 'HTML' } } } },
    [HUB_OPENAPI_PATH]: { get: { operationId: 'openApi', summary: 'this document', responses: { 200: { description: 'the OpenAPI 3.1 document', content: { 'application/json': { schema: { type: 'object' } } } } } } },
  };
  for (const route of routes) (paths[openApiPath(route.url)] ??= {})[route.method.toLowerCase()] = operation(route);
  return {
    openapi: '3.1.0',
    info: {
      title: 'vsc license restore hub',
      version,
      description: 'The restore hub (Wibu 000 P002): licensor registry, restore jobs split per licensor, the central locking list, pass-through to licensors. Errors: {"error": {"reason", "message"}}.',
    },
    paths,
    components: {
      securitySchemes: {
        adminToken: { type: 'http', scheme: 'bearer', description: 'the hub\'s admin token (DIR/admin.token)' },
        licensorKey: { type: 'http', scheme: 'bearer', description: 'the licensor\'s API key at its own issuing service, passed on' },
      },
    },
  };
}

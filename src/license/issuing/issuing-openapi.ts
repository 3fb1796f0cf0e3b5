// GET /openapi.json of the issuing back end (DESIGN.md "License containers": "GET /openapi.json describes its API"):
// an OpenAPI 3.1 document written from the same route table and JSON shapes the service registers (issuing-routes.ts),
// so every route is described exactly as it is checked.
import { errorAnswer } from './issuing-schemas.js';
import type { IssuingRoute } from './issuing-routes.js';
import type { Shape } from './json-shape.js';

export const OPENAPI_PATH = '/openapi.json';
const LOST_ITEM_ROUTES = new Set(['/v1/restores', '/v1/transfers', '/v1/transfers/:id/proof']);
/** Routes a locked container is refused (000 §2.10). */
const LOCKABLE_ROUTES = new Set(['/v1/activations', '/v1/time', '/v1/restores', '/v1/transfers', '/v1/transfers/:id/proof', '/v1/reactivations', '/v1/checkpoints']);

/** `/v1/tickets/:ticket` as OpenAPI writes it: `/v1/tickets/{ticket}`. */
export const openApiPath = (url: string): string => url.replace(/:([A-Za-z]+)/g, '{$1}');

function parameters(shape: Shape | undefined, where: 'path' | 'query'): unknown[] {
  if (shape === undefined || shape.type !== 'object') return [];
  return Object.entries(shape.properties).map(([name, schema]) => ({ name, in: where, required: where === 'path' || shape.required.includes(name), schema }));
}

const json = (schema: Shape) => ({ 'application/json': { schema } });

function operation(route: IssuingRoute): Record<string, unknown> {
  const errors: Record<string, unknown> = {
    400: { description: 'malformed request (reason input)', content: json(errorAnswer) },
    404: { description: 'unknown ticket, product or firm (reason ticket or no-license)', content: json(errorAnswer) },
    409: { description: 'refused by the state of a ticket, order or activation (reason ticket, input, foreign, no-license)', content: json(errorAnswer) },
    413: { description: 'body larger than the limit (reason limit)', content: json(errorAnswer) },
    415: { description: 'a body that is not application/json (reason input)', content: json(errorAnswer) },
    429: { description: 'rate or activation-cycling limit (reason limit); Retry-After says when to ask again', content: json(errorAnswer) },
  };
  if (route.licensor) errors[401] = { description: 'missing or invalid licensor API key (reason unauthenticated)', content: json(errorAnswer) };
  if (route.url === '/v1/receipts') errors[422] = { description: 'a record not signed by the activation\'s card key (reason signature)', content: json(errorAnswer) };
  if (LOST_ITEM_ROUTES.has(route.url)) {
    errors[422] = { description: 'a backup item or record whose signature does not verify (reason signature); a licensor that restores nothing (reason not-restorable)', content: json(errorAnswer) };
    errors[409] = { description: 'refused by state: a source restored already (replayed), an item of another card or time (foreign), a chain of restores waiting for the licensor (approval, with "alert")', content: json(errorAnswer) };
  }
  if (LOCKABLE_ROUTES.has(route.url)) errors[423] = { description: 'the container is on a locking list (reason locked), with the central authority\'s "lockSequence" when the hub locked it', content: json(errorAnswer) };
  if (route.url === '/v1/checkpoints') errors[409] = { description: 'not due yet (reason limit, with "dueAt"), or refused by the ticket\'s state', content: json(errorAnswer) };
  if (route.url === '/v1/reactivations') errors[409] = { description: 'waits for the licensor\'s approval (reason approval, with "alert"), or refused by the ticket\'s state', content: json(errorAnswer) };
  if (route.method === 'GET') {
    delete errors[413];
    delete errors[415];
  }
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.licensor ? { security: [{ licensorKey: [] }] } : {}),
    ...(route.params === undefined && route.querystring === undefined ? {} : { parameters: [...parameters(route.params, 'path'), ...parameters(route.querystring, 'query')] }),
    ...(route.body === undefined ? {} : { requestBody: { required: true, content: json(route.body) } }),
    responses: { [route.status]: { description: 'done', content: json(route.answer) }, ...errors },
  };
}

/** The OpenAPI 3.1 document of `routes` (plus GET /openapi.json itself). */
export function issuingOpenApi(routes: readonly IssuingRoute[], version = '1'): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {
    [OPENAPI_PATH]: { get: { operationId: 'openApi', summary: 'this document', responses: { 200: { description: 'the OpenAPI 3.1 document', content: { 'application/json': { schema: { type: 'object' } } } } } } },
  };
  for (const route of routes) (paths[openApiPath(route.url)] ??= {})[route.method.toLowerCase()] = operation(route);
  return {
    openapi: '3.1.0',
    info: {
      title: 'vsc license issuing',
      version,
      description: 'Back-end license issuing (Wibu 002): order -> ticket -> activation online or offline, receipts, deactivation, certified time; the licensor\'s restoring service (Wibu 000 CM-Box Backup, 001 lost licenses): restores, transfers, locking list, alerts, reactivation, checkpoint licenses. Errors: {"error": {"reason", "message"}}.',
    },
    paths,
    components: { securitySchemes: { licensorKey: { type: 'http', scheme: 'bearer', description: 'the licensor\'s API key (vsc license licensor add)' } } },
  };
}

// The issuing back end's routes, v1 (Wibu 002 back-end license issuing; DESIGN.md "License containers"): one table
// that the HTTP service registers and GET /openapi.json describes, so the two cannot drift apart. Licensor routes carry
// `Authorization: Bearer <API key>` and see only the licensor's own products, orders and audit; customer routes carry
// the ticket as their credential.
import { activateTicket, viewTicket } from './issuing-activations.js';
import type { Caller, IssuingBackend, LicensorRecord } from './issuing-backend.js';
import { deactivateTicket } from './issuing-deactivations.js';
import { defineProduct, licensorAudit, placeOrder, type Order } from './issuing-orders.js';
import { acceptReceipt } from './issuing-receipts.js';
import { parseActivationRequest, parseDeactivationRequest, parseReceiptRequest, parseTimeRequest } from './issuing-requests.js';
import {
  activationBody, auditAnswer, auditQuery, deactivationBody, orderAnswer, orderBody, productAnswer, productBody, receiptAnswer, receiptBody, signedAnswer, ticketAnswer,
  ticketParams, timeAnswer, timeBody,
} from './issuing-schemas.js';
import { certifyTime } from './issuing-time.js';
import type { Shape } from './json-shape.js';
import type { HubLink } from './hub-link.js';
import { LOST_LICENSE_ROUTES } from './issuing-lost-routes.js';

export interface RouteContext {
  readonly backend: IssuingBackend;
  /** The link to the hub (`vsc license serve --hub`), when the service has one. */
  readonly hub?: HubLink;
  /** The authenticated licensor (licensor routes only). */
  readonly licensor?: LicensorRecord;
  readonly caller: Caller;
  readonly body: unknown;
  readonly params: Record<string, string>;
  readonly query: Record<string, string>;
}

export interface IssuingRoute {
  readonly method: 'GET' | 'POST' | 'PUT';
  /** fastify's form: `:name` for a path parameter. */
  readonly url: string;
  readonly operationId: string;
  readonly summary: string;
  /** Needs a licensor's API key. */
  readonly licensor: boolean;
  readonly body?: Shape;
  readonly params?: Shape;
  readonly querystring?: Shape;
  readonly answer: Shape;
  readonly status: 200 | 201;
  /** A body limit of its own (restores carry a backup item), instead of the service's. */
  readonly bodyLimit?: number;
  handle(context: RouteContext): Promise<unknown>;
}

const licensorOf = (context: RouteContext): LicensorRecord => context.licensor!;
type Fields = Record<string, unknown>;

export const ISSUING_ROUTES: readonly IssuingRoute[] = [
  {
    method: 'POST', url: '/v1/products', operationId: 'defineProduct', licensor: true, body: productBody, answer: productAnswer, status: 200,
    summary: 'define or replace one of the licensor\'s products: code, text and template',
    handle: async (context) => {
      const body = context.body as Fields;
      return { product: await defineProduct(context.backend, licensorOf(context), { code: body['code'] as number, text: body['text'] as string, template: body['template'] }, context.caller) };
    },
  },
  {
    method: 'POST', url: '/v1/orders', operationId: 'placeOrder', licensor: true, body: orderBody, answer: orderAnswer, status: 200,
    summary: 'an order from the licensor\'s ERP or shop: its tickets (the same orderId with the same items answers the same tickets)',
    handle: (context) => placeOrder(context.backend, licensorOf(context), context.body as Order, context.caller),
  },
  {
    method: 'GET', url: '/v1/audit', operationId: 'readAudit', licensor: true, querystring: auditQuery, answer: auditAnswer, status: 200,
    summary: 'the licensor\'s own audit records, oldest first',
    handle: async (context) => {
      const { after, limit } = context.query;
      return { records: await licensorAudit(context.backend, licensorOf(context), { ...(after === undefined ? {} : { after: Number(after) }), ...(limit === undefined ? {} : { limit: Number(limit) }) }, context.caller) };
    },
  },
  {
    method: 'GET', url: '/v1/tickets/:ticket', operationId: 'viewTicket', licensor: false, params: ticketParams, answer: ticketAnswer, status: 200,
    summary: 'a ticket\'s product, state and activations (the ticket is the credential)',
    handle: (context) => viewTicket(context.backend, context.params['ticket']!, context.caller),
  },
  {
    method: 'POST', url: '/v1/activations', operationId: 'activate', licensor: false, body: activationBody, answer: signedAnswer, status: 200,
    summary: 'a signed update that puts the ticket\'s product onto the container (or renews it); the offline request file is this body',
    handle: (context) => activateTicket(context.backend, parseActivationRequest(context.body, 'body'), context.caller, context.hub === undefined ? {} : { lockAuthority: context.hub.authorityKey }),
  },
  {
    method: 'POST', url: '/v1/receipts', operationId: 'receipt', licensor: false, body: receiptBody, answer: receiptAnswer, status: 200,
    summary: 'the card-signed record of an applied update: confirms an activation, or completes a deactivation (the seat is back)',
    handle: (context) => acceptReceipt(context.backend, parseReceiptRequest(context.body, 'body'), context.caller),
  },
  {
    method: 'POST', url: '/v1/deactivations', operationId: 'deactivate', licensor: false, body: deactivationBody, answer: signedAnswer, status: 200,
    summary: 'a signed delete-product for the container the ticket is active on; activation cycling is limited by the product',
    handle: (context) => deactivateTicket(context.backend, parseDeactivationRequest(context.body, 'body'), context.caller),
  },
  {
    method: 'POST', url: '/v1/time', operationId: 'certifyTime', licensor: false, body: timeBody, answer: timeAnswer, status: 200,
    summary: 'a time certificate for one container from the licensor of the firm code (certified time)',
    handle: (context) => certifyTime(context.backend, parseTimeRequest(context.body, 'body'), context.caller),
  },
  ...LOST_LICENSE_ROUTES,
];

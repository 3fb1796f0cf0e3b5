// Public surface of the license issuing back end (Wibu 002 back-end license issuing; DESIGN.md "License containers and
// lost licenses"): its store, the HTTP service `vsc license serve`, the typed client, and the offline request files.
export * from './issuing-backend.js';
export * from './issuing-data.js';
export * from './issuing-database.js';
export * from './issuing-refusal.js';
export * from './ticket-code.js';
export * from './product-template.js';
export * from './json-shape.js';
export * from './issuing-schemas.js';
export * from './issuing-requests.js';
export * from './issuing-licensors.js';
export * from './issuing-orders.js';
export * from './issuing-activations.js';
export * from './issuing-receipts.js';
export * from './issuing-deactivations.js';
export * from './issuing-time.js';
export * from './issuing-routes.js';
export * from './issuing-openapi.js';
export * from './issuing-service.js';
export * from './issuing-client.js';

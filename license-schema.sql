-- The license issuing back end's database (`vsc license serve`; Wibu 002 "back-end license issuing": order in an ERP
-- or shop -> ticket -> activation online or offline, renewals; DESIGN.md "License containers and lost licenses").
-- Same notation as schema.sql (types in braces spelled per dialect by the loader, one statement per semicolon), its own
-- tables, all named issuing_*, so that it may share a PostgreSQL database with a VSC server without a clash.
-- Never a secret in clear: signing seeds and ticket codes are sealed under the data directory's key (a 0600 file that is
-- not in the database), API keys and ticket codes are looked up by their SHA-256. Times are Unix seconds.

CREATE TABLE IF NOT EXISTS issuing_schema_version (
  version INTEGER NOT NULL
);

-- One row per licensor (a firm item's owner, Wibu 000 §2.2): its firm code and Ed25519 key are fixed for ever.
CREATE TABLE IF NOT EXISTS issuing_licensors (
  id            {SERIAL},
  name          TEXT NOT NULL UNIQUE,
  firm_code     {BIGINT} NOT NULL UNIQUE CHECK (firm_code >= 0 AND firm_code <= 4294967295),
  public_key    {BYTES} NOT NULL UNIQUE,
  -- the Ed25519 seed, sealed under the data directory's key and bound to the firm code and public key
  sealed_seed   {BYTES} NOT NULL,
  -- SHA-256 of the secret part of the licensor's API key (compared in constant time)
  api_key_hash  {BYTES} NOT NULL,
  created_at    {BIGINT} NOT NULL
);

-- A licensor's product: code, text and template (product-template.ts); defined or replaced by the licensor.
CREATE TABLE IF NOT EXISTS issuing_products (
  licensor_id   {BIGINT} NOT NULL REFERENCES issuing_licensors (id),
  product_code  {BIGINT} NOT NULL CHECK (product_code >= 0 AND product_code <= 4294967295),
  text          TEXT NOT NULL,
  template      TEXT NOT NULL,
  created_at    {BIGINT} NOT NULL,
  updated_at    {BIGINT} NOT NULL,
  PRIMARY KEY (licensor_id, product_code)
);

-- The licensor's own order ids (ERP / shop): one order per id, so a retried order makes no second set of tickets.
CREATE TABLE IF NOT EXISTS issuing_orders (
  licensor_id   {BIGINT} NOT NULL REFERENCES issuing_licensors (id),
  order_id      TEXT NOT NULL,
  -- SHA-256 of the order's items: the same id with other items is refused
  items_digest  {BYTES} NOT NULL,
  created_at    {BIGINT} NOT NULL,
  PRIMARY KEY (licensor_id, order_id)
);

-- A ticket: the customer's credential for `quantity` activations of one product, or a renewal of another ticket.
CREATE TABLE IF NOT EXISTS issuing_tickets (
  id            {SERIAL},
  -- SHA-256 of the ticket code: the only way a ticket is found
  code_hash     {BYTES} NOT NULL UNIQUE,
  -- the code sealed under the data directory's key, so that a repeated order answers the same codes
  sealed_code   {BYTES} NOT NULL,
  licensor_id   {BIGINT} NOT NULL,
  order_id      TEXT NOT NULL,
  position      INTEGER NOT NULL,
  product_code  {BIGINT} NOT NULL,
  quantity      INTEGER NOT NULL CHECK (quantity >= 1),
  -- the original ticket this one renews (subscription period, pay-per-use instalment); NULL for a new license
  renewal_of    {BIGINT} REFERENCES issuing_tickets (id),
  -- 'open': activations left; 'used': every activation taken; 'revoked'
  state         TEXT NOT NULL CHECK (state IN ('open', 'used', 'revoked')),
  created_at    {BIGINT} NOT NULL,
  updated_at    {BIGINT} NOT NULL,
  FOREIGN KEY (licensor_id, order_id) REFERENCES issuing_orders (licensor_id, order_id),
  FOREIGN KEY (licensor_id, product_code) REFERENCES issuing_products (licensor_id, product_code)
);

CREATE INDEX IF NOT EXISTS issuing_tickets_order ON issuing_tickets (licensor_id, order_id);

-- One activation of a ticket on one container (serial): the signed update issued for it, and its life:
-- 'pending' (issued) -> 'confirmed' (the card's receipt arrived) -> 'deactivating' (delete-product issued)
-- -> 'deactivated' (its receipt arrived: the seat is back).
CREATE TABLE IF NOT EXISTS issuing_activations (
  id                        {SERIAL},
  ticket_id                 {BIGINT} NOT NULL REFERENCES issuing_tickets (id),
  licensor_id               {BIGINT} NOT NULL REFERENCES issuing_licensors (id),
  serial                    TEXT NOT NULL,
  card_public_key           {BYTES} NOT NULL,
  -- the client's request id (32 hex) and firm update counter as asked: a retry with both gets the same answer
  request_id                TEXT NOT NULL UNIQUE,
  requested_counter         {BIGINT},
  update_counter            {BIGINT} NOT NULL,
  update_text               TEXT NOT NULL,
  update_digest             {BYTES} NOT NULL,
  -- the product's expiration after this update (NULL: none); a renewal extends from the latest
  expiration                {BIGINT},
  state                     TEXT NOT NULL CHECK (state IN ('pending', 'confirmed', 'deactivating', 'deactivated')),
  -- the card-signed receipt (trail line) that confirmed the update
  receipt                   TEXT,
  deactivation_request_id   TEXT UNIQUE,
  deactivation_counter      {BIGINT},
  deactivation_update       TEXT,
  deactivation_digest       {BYTES},
  deactivation_receipt      TEXT,
  deactivation_requested_at {BIGINT},
  created_at                {BIGINT} NOT NULL,
  updated_at                {BIGINT} NOT NULL
);

CREATE INDEX IF NOT EXISTS issuing_activations_ticket ON issuing_activations (ticket_id, serial);
CREATE INDEX IF NOT EXISTS issuing_activations_serial ON issuing_activations (licensor_id, serial);

-- Append-only (no statement of the service updates or deletes a row): every action, who, what, when, outcome.
-- Never a secret: tickets are named by their reference (the first 8 bytes of the code's hash), never by their code.
CREATE TABLE IF NOT EXISTS issuing_audit (
  id            {SERIAL},
  at            {BIGINT} NOT NULL,
  licensor_id   {BIGINT} REFERENCES issuing_licensors (id),
  -- 'licensor NAME', 'customer', 'administrator'
  actor         TEXT NOT NULL,
  -- the client's address, NULL for the command line
  client        TEXT,
  action        TEXT NOT NULL,
  subject       TEXT NOT NULL,
  outcome       TEXT NOT NULL,
  detail        TEXT
);

CREATE INDEX IF NOT EXISTS issuing_audit_licensor ON issuing_audit (licensor_id, id);

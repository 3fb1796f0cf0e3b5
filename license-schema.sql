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

-- ---- Lost licenses (issue 17; Wibu 000 "CM-Box Backup" §2.2-2.12, 001 reactivation, blacklisting, checkpoints) ----
-- This service is the licensor's restoring service ("License Generator", 000 §2.2). The tables below only add to the
-- ones above: a database of schema version 1 gains them when the service opens it.

-- A licensor's restore policy (000 §2.3, §2.8, §2.11), reactivation rules and honey-pot setting (001): the JSON that
-- PUT /v1/restore-policy takes. No row: the defaults (restore mode none: a licensor opts in).
CREATE TABLE IF NOT EXISTS issuing_restore_policies (
  licensor_id   {BIGINT} NOT NULL PRIMARY KEY REFERENCES issuing_licensors (id),
  policy        TEXT NOT NULL,
  updated_at    {BIGINT} NOT NULL
);

-- Signed updates of the lost-license flows (restore, a transfer's delete-firm and restore, reactivation, checkpoint
-- renewal, withdrawal of a blacklisted license): 'issued' until the card's receipt (POST /v1/receipts) confirms it.
CREATE TABLE IF NOT EXISTS issuing_updates (
  id                 {SERIAL},
  licensor_id        {BIGINT} NOT NULL REFERENCES issuing_licensors (id),
  kind               TEXT NOT NULL CHECK (kind IN ('restore', 'transfer-delete', 'transfer', 'reactivation', 'checkpoint', 'withdrawal')),
  -- the ticket whose activation it serves (reactivation, checkpoint, withdrawal); NULL for restores and transfers
  ticket_id          {BIGINT} REFERENCES issuing_tickets (id),
  -- the client's request id (reactivation, checkpoint): the same id gets the same answer
  request_id         TEXT UNIQUE,
  request_digest     {BYTES},
  serial             TEXT NOT NULL,
  card_public_key    {BYTES} NOT NULL,
  requested_counter  {BIGINT},
  update_counter     {BIGINT} NOT NULL,
  update_text        TEXT NOT NULL,
  update_digest      {BYTES} NOT NULL,
  -- a checkpoint renewal's new expiration
  expiration         {BIGINT},
  state              TEXT NOT NULL CHECK (state IN ('issued', 'confirmed')),
  receipt            TEXT,
  created_at         {BIGINT} NOT NULL,
  updated_at         {BIGINT} NOT NULL
);

CREATE INDEX IF NOT EXISTS issuing_updates_serial ON issuing_updates (licensor_id, serial);
CREATE INDEX IF NOT EXISTS issuing_updates_digest ON issuing_updates (update_digest);
CREATE INDEX IF NOT EXISTS issuing_updates_ticket ON issuing_updates (ticket_id, kind, created_at);

-- Restores and transfers of one backed-up firm item (000 §2.2, §2.12) from a source container to a target: the
-- chain of sources and targets is what repeated-restore alerts follow (000 §2.11).
-- restore: 'restored'; transfer: 'deleting' (the source's delete-firm issued) -> 'transferred' (its receipt proven).
CREATE TABLE IF NOT EXISTS issuing_restores (
  id                 {SERIAL},
  licensor_id        {BIGINT} NOT NULL REFERENCES issuing_licensors (id),
  kind               TEXT NOT NULL CHECK (kind IN ('restore', 'transfer')),
  request_id         TEXT NOT NULL UNIQUE,
  -- SHA-256 of the request: the same id with another request is refused
  request_digest     {BYTES} NOT NULL,
  source_serial      TEXT NOT NULL,
  source_card_key    {BYTES} NOT NULL,
  backup_time        {BIGINT} NOT NULL,
  target_serial      TEXT NOT NULL,
  target_card_key    {BYTES} NOT NULL,
  target_counter     {BIGINT},
  -- the backup item file (transfers restore from it once the delete is proven)
  item               TEXT NOT NULL,
  state              TEXT NOT NULL CHECK (state IN ('restored', 'deleting', 'transferred')),
  delete_update_id   {BIGINT} REFERENCES issuing_updates (id),
  update_id          {BIGINT} REFERENCES issuing_updates (id),
  -- JSON lists of product codes, and the unit counters' restore degree in hundredths of a percent (000 §2.3)
  restored           TEXT,
  skipped            TEXT,
  degree_hundredths  INTEGER,
  created_at         {BIGINT} NOT NULL,
  updated_at         {BIGINT} NOT NULL
);

CREATE INDEX IF NOT EXISTS issuing_restores_source ON issuing_restores (licensor_id, source_serial);
CREATE INDEX IF NOT EXISTS issuing_restores_target ON issuing_restores (licensor_id, target_serial);

-- The licensor's local locking list (000 §2.10): containers restored elsewhere as lost, broken or stolen, or
-- blacklisted at a reactivation (001). reported_at: when the hub took the report for the central list (NULL: not yet).
CREATE TABLE IF NOT EXISTS issuing_locks (
  licensor_id   {BIGINT} NOT NULL REFERENCES issuing_licensors (id),
  serial        TEXT NOT NULL,
  reason        TEXT NOT NULL CHECK (reason IN ('restore', 'reactivation')),
  subject       TEXT NOT NULL,
  created_at    {BIGINT} NOT NULL,
  reported_at   {BIGINT},
  PRIMARY KEY (licensor_id, serial)
);

-- The central locking list as this service last downloaded it from the hub (000 §2.10): each serial with the lock
-- sequence signed by the central authority, handed to a locked container that asks for anything.
CREATE TABLE IF NOT EXISTS issuing_central_locks (
  serial         TEXT NOT NULL PRIMARY KEY,
  lock_sequence  TEXT NOT NULL,
  fetched_at     {BIGINT} NOT NULL
);

-- What the licensor is told (000 §2.11 repeated restores along a chain; 001 manual approval of reactivations):
-- 'notice' (told, went ahead), 'pending' (stopped until approved), 'approved' (the same request goes ahead once),
-- 'used' (it did).
CREATE TABLE IF NOT EXISTS issuing_alerts (
  id            {SERIAL},
  licensor_id   {BIGINT} NOT NULL REFERENCES issuing_licensors (id),
  kind          TEXT NOT NULL CHECK (kind IN ('restore-chain', 'reactivation')),
  -- what the approval applies to: the same request has the same subject
  subject       TEXT NOT NULL,
  detail        TEXT NOT NULL,
  chain         INTEGER,
  state         TEXT NOT NULL CHECK (state IN ('notice', 'pending', 'approved', 'used')),
  created_at    {BIGINT} NOT NULL,
  updated_at    {BIGINT} NOT NULL
);

CREATE INDEX IF NOT EXISTS issuing_alerts_subject ON issuing_alerts (licensor_id, kind, subject);

-- A license withdrawn from a container at a reactivation elsewhere (001 blacklisting 'license'): a delete-product, or
-- with the honey-pot setting a honey-pot product item, handed to the container at its next contact.
-- 'waiting' -> 'issued' (update_id) -> 'done' (its receipt, or the container had no firm item left).
CREATE TABLE IF NOT EXISTS issuing_withdrawals (
  id             {SERIAL},
  licensor_id    {BIGINT} NOT NULL REFERENCES issuing_licensors (id),
  serial         TEXT NOT NULL,
  -- the card key the license was activated for there (its receipt of the withdrawal is checked against it)
  card_public_key {BYTES} NOT NULL,
  product_code   {BIGINT} NOT NULL,
  mode           TEXT NOT NULL CHECK (mode IN ('delete', 'honey-pot')),
  -- the firm update counter the container had by this service's last update to it
  counter        {BIGINT} NOT NULL,
  ticket_id      {BIGINT} NOT NULL REFERENCES issuing_tickets (id),
  update_id      {BIGINT} REFERENCES issuing_updates (id),
  state          TEXT NOT NULL CHECK (state IN ('waiting', 'issued', 'done')),
  created_at     {BIGINT} NOT NULL,
  updated_at     {BIGINT} NOT NULL
);

CREATE INDEX IF NOT EXISTS issuing_withdrawals_serial ON issuing_withdrawals (licensor_id, serial, state);

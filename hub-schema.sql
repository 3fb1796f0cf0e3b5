-- The restore hub's database (`vsc license hub serve --data DIR`, DIR/hub.sqlite; Wibu 000 "Single Action License
-- Restore Process" §2.1 the Hub Web Service that "knows the Restoring Web Services of all licensors who support such a
-- restore", §2.2 and "CM-Box Backup" §2.10 the central locking list). Same notation as schema.sql (types in braces
-- spelled per dialect by the loader, one statement per semicolon), its own tables, all named hub_*.
-- No secret is stored here: the authority's key and the admin token are 0600 files of the data directory, licensors'
-- API keys only pass through. Restore jobs live in memory. Times are Unix seconds.

CREATE TABLE IF NOT EXISTS hub_schema_version (
  version INTEGER NOT NULL
);

-- The licensors who opted in (000 P002 §2.1): a licensor key, its name and its restoring service's URL. A registration
-- signed by the licensor key replaces the row only when its signed time is newer than the stored one.
CREATE TABLE IF NOT EXISTS hub_licensors (
  licensor_key  {BYTES} PRIMARY KEY,
  name          TEXT NOT NULL,
  restore_url   TEXT NOT NULL,
  signed_time   {BIGINT} NOT NULL,
  registered_at {BIGINT} NOT NULL,
  updated_at    {BIGINT} NOT NULL
);

-- The licensors the hub's operator authorized (`vsc license hub authorize`; 000 §2.10 "checks whether the Request for
-- Locking came from an authorized Licensor"): only they register a restoring service and report locks. Revoking one
-- removes its registration too.
CREATE TABLE IF NOT EXISTS hub_authorized_licensors (
  licensor_key  {BYTES} PRIMARY KEY,
  name          TEXT NOT NULL,
  authorized_at {BIGINT} NOT NULL
);

-- The central locking list (000 §2.10 "a Locking Sequence is created and set into a database which can be read by
-- authorized Licensors and Certified Time Server Partners"): one lock sequence per locked serial, signed by the
-- authority key. An unlock removes the row (its sequence is kept in the audit).
CREATE TABLE IF NOT EXISTS hub_locks (
  serial        TEXT PRIMARY KEY,
  lock_sequence TEXT NOT NULL,
  lock_time     {BIGINT} NOT NULL,
  -- the registered licensor whose report made the lock
  licensor_key  {BYTES} NOT NULL,
  created_at    {BIGINT} NOT NULL
);

-- The newest unlock time per serial: a later lock must be newer, so an old lock sequence can never apply again.
CREATE TABLE IF NOT EXISTS hub_unlocks (
  serial        TEXT PRIMARY KEY,
  unlock_time   {BIGINT} NOT NULL
);

-- Signed lock reports already taken (SHA-256 of the signature), kept for twice the freshness window: a report replayed
-- after an unlock is refused instead of locking the serial again.
CREATE TABLE IF NOT EXISTS hub_seen_reports (
  digest        {BYTES} PRIMARY KEY,
  seen_at       {BIGINT} NOT NULL
);

-- Append-only: every registration, lock and unlock (and their refusals), who asked and from where.
CREATE TABLE IF NOT EXISTS hub_audit (
  id            {SERIAL},
  at            {BIGINT} NOT NULL,
  actor         TEXT NOT NULL,
  client        TEXT,
  action        TEXT NOT NULL,
  subject       TEXT NOT NULL,
  outcome       TEXT NOT NULL,
  detail        TEXT
);

CREATE INDEX IF NOT EXISTS hub_audit_at ON hub_audit (at);

-- The VSC server's database (DESIGN.md "Data"): one schema for SQLite and PostgreSQL.
-- Portable subset only: TEXT, INTEGER/BIGINT, BLOB/BYTEA are spelled per dialect by the loader
-- (it replaces the type names in braces), every statement ends with a semicolon on its own line end.
-- The server never stores a secret in clear: sealed information is ciphertext under the owner's
-- protection key, a server-held card's seed ciphertext under the server's own key, the owner is
-- represented by a verifier, tokens and holder secrets by hashes.

CREATE TABLE IF NOT EXISTS schema_version (
  version INTEGER NOT NULL
);

-- One row per serial number. Copies and replacements share card_id (DESIGN.md "Keys and secrets").
CREATE TABLE IF NOT EXISTS cards (
  serial            TEXT PRIMARY KEY,
  card_id           {BYTES} NOT NULL,
  -- 'idle' | 'in-use' | 'destroyed' (patent 004 [0034], Fig. 4)
  state             TEXT NOT NULL CHECK (state IN ('idle', 'in-use', 'destroyed')),
  -- SHA-256 of the one-time enrollment token; NULL once the owner has enrolled
  enrollment_token  {BYTES},
  enrolled          INTEGER NOT NULL DEFAULT 0,
  -- Argon2id parameters of the owner's password (per card, so they can be raised later)
  kdf_salt          {BYTES},
  kdf_memory_kib    INTEGER,
  kdf_iterations    INTEGER,
  kdf_parallelism   INTEGER,
  auth_verifier     {BYTES},
  -- SHA-256 of the recovery code shown to the owner once at enrollment (lifts the password back-off)
  recovery_hash     {BYTES},
  -- the card's protected information, sealed by the client, and its version
  sealed            {BYTES},
  sealed_version    {BIGINT} NOT NULL DEFAULT 0,
  -- Ed25519 public key of the card's signing key (public, for verifiers)
  public_key        {BYTES},
  -- 'software': the owner's machine generated the signing key and keeps it in the sealed information;
  -- 'server-held': this server generated it and signs SIGN AND INCREMENT itself (patent 003 [0096])
  kind              TEXT NOT NULL DEFAULT 'software' CHECK (kind IN ('software', 'server-held')),
  -- a server-held card's Ed25519 seed, sealed to this server (AEAD under a key derived from the server's
  -- own keys, bound to the serial); never in clear. NULL for other cards and once destroyed.
  held_seed         {BYTES},
  -- the MUK of the machine holding the card: set only by the statement that moves idle to in-use
  muk               {BYTES},
  -- SHA-256 of the per-insert holder secret, for remove on a new session
  holder_hash       {BYTES},
  -- who gave the card back last: the holder_hash of a remove, or a hash of the MUK of a recover,
  -- so that it repeating an operation whose answer was lost (dropped connection, server crash) is
  -- told it succeeded
  last_holder_hash  {BYTES},
  -- counter window granted at insert: [window_start, window_end)
  window_start      TEXT,
  window_end        TEXT,
  created_at        {BIGINT} NOT NULL,
  updated_at        {BIGINT} NOT NULL
);

CREATE INDEX IF NOT EXISTS cards_card_id ON cards (card_id);

-- Counter values are allocated per card id, so copies sharing one signing key never sign the
-- same value (DESIGN.md "Counters that never roll back"). Decimal text: values are 128-bit. A
-- server-held card signs with next_unallocated itself and moves it on in the signature's transaction.
CREATE TABLE IF NOT EXISTS counter_ranges (
  card_id           {BYTES} PRIMARY KEY,
  next_unallocated  TEXT NOT NULL
);

-- Failed owner passwords, per card, in one bucket per machine that has held the card and one shared
-- by every other machine (DESIGN.md "Keys and secrets"): strangers slow only strangers. A serial that
-- names no card has buckets too, so that it answers like one that does.
CREATE TABLE IF NOT EXISTS auth_failures (
  serial            TEXT NOT NULL,
  -- a hash of the machine's MUK (card_machines.machine), or 32 zero bytes for all other machines
  bucket            {BYTES} NOT NULL,
  failures          INTEGER NOT NULL,
  last_failure_at   {BIGINT} NOT NULL,
  PRIMARY KEY (serial, bucket)
);

-- The machines that have held a card (a hash of each MUK), recorded by the insert that moved it to
-- in-use, and by the enrollment.
CREATE TABLE IF NOT EXISTS card_machines (
  serial            TEXT NOT NULL,
  machine           {BYTES} NOT NULL,
  since             {BIGINT} NOT NULL,
  PRIMARY KEY (serial, machine)
);

-- Append-only: every transition writes one row in the same transaction. Refusals are aggregated: one
-- row per card, operation and outcome per hour, counting them.
CREATE TABLE IF NOT EXISTS events (
  id                {SERIAL},
  serial            TEXT NOT NULL,
  at                {BIGINT} NOT NULL,
  operation         TEXT NOT NULL,
  outcome           TEXT NOT NULL,
  from_state        TEXT,
  to_state          TEXT,
  detail            TEXT,
  count             INTEGER NOT NULL DEFAULT 1
);

CREATE INDEX IF NOT EXISTS events_serial ON events (serial, id);

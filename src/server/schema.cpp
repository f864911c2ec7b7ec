#include "server/schema.h"

namespace cipherpulse::server {
namespace {

// Version 1. Times are Unix milliseconds (UTC). Ciphertexts are fixed-length big-endian
// blobs (the byte length of n^2 of their key).
constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE keys (
    kid         TEXT PRIMARY KEY,
    jws         TEXT NOT NULL,     -- the signed public key document, as received
    document    TEXT NOT NULL,     -- its payload (the public key JSON)
    active      INTEGER NOT NULL CHECK (active IN (0, 1)),
    created_ms  INTEGER NOT NULL
);
CREATE TABLE devices (
    id              TEXT PRIMARY KEY,
    patient         TEXT NOT NULL,
    public_key_pem  TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    created_ms      INTEGER NOT NULL,
    revoked_ms      INTEGER
);
CREATE INDEX devices_patient ON devices (patient);
-- Every accepted upload exactly as received, so device signatures can be re-checked.
CREATE TABLE batches (
    id              INTEGER PRIMARY KEY,
    device_id       TEXT NOT NULL REFERENCES devices (id),
    received_ms     INTEGER NOT NULL,
    method          TEXT NOT NULL,
    path            TEXT NOT NULL,
    content_digest  TEXT NOT NULL,
    signature_input TEXT NOT NULL,
    signature       TEXT NOT NULL,
    body            BLOB NOT NULL
);
CREATE INDEX batches_received ON batches (received_ms);
CREATE TABLE records (
    device_id    TEXT NOT NULL REFERENCES devices (id),
    seq          INTEGER NOT NULL,
    t_ms         INTEGER NOT NULL,
    metric       TEXT NOT NULL,
    schema       TEXT NOT NULL,
    kid          TEXT NOT NULL REFERENCES keys (kid),
    ct           BLOB NOT NULL,
    batch_id     INTEGER NOT NULL REFERENCES batches (id),
    received_ms  INTEGER NOT NULL,
    late         INTEGER NOT NULL DEFAULT 0,  -- granularities it arrived too late for
    PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
CREATE INDEX records_received ON records (received_ms);
CREATE TABLE windows (
    id            INTEGER PRIMARY KEY,
    kid           TEXT NOT NULL,
    patient       TEXT NOT NULL,
    metric        TEXT NOT NULL,
    schema        TEXT NOT NULL,
    granularity   TEXT NOT NULL,
    start_ms      INTEGER NOT NULL,
    length_ms     INTEGER NOT NULL,
    seal_ms       INTEGER NOT NULL,  -- start + length + grace
    record_count  INTEGER NOT NULL,
    aggregate     BLOB NOT NULL,     -- product of its records' ciphertexts mod n^2
    sealed        INTEGER NOT NULL DEFAULT 0 CHECK (sealed IN (0, 1)),
    seal_seq      INTEGER UNIQUE,    -- order of sealing: the decryptor's cursor
    sealed_ms     INTEGER,
    UNIQUE (kid, patient, metric, schema, granularity, start_ms)
);
CREATE INDEX windows_open ON windows (sealed, seal_ms);
CREATE INDEX windows_patient ON windows (patient, metric, granularity, start_ms);
CREATE TABLE window_records (
    window_id  INTEGER NOT NULL REFERENCES windows (id),
    device_id  TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (window_id, device_id, seq)
) WITHOUT ROWID;
CREATE TABLE tokens (
    id          INTEGER PRIMARY KEY,
    hash        BLOB NOT NULL UNIQUE,  -- SHA-256 of the token; the token itself is never stored
    role        TEXT NOT NULL CHECK (role IN ('admin', 'clinician', 'analyst', 'decryptor')),
    label       TEXT NOT NULL DEFAULT '',
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER,
    revoked_ms  INTEGER
);
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,
    ts_ms      INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    detail     TEXT NOT NULL,
    prev_hash  BLOB NOT NULL,
    hash       BLOB NOT NULL
);
)sql";

// Version 2: when a key stopped being active, so records under it are still accepted for
// the rotation grace period (edges may hold records encrypted before the rotation).
constexpr std::string_view kSchemaV2 = R"sql(
ALTER TABLE keys ADD COLUMN retired_ms INTEGER;
)sql";

// Version 3: window membership by batch instead of by record. All records of one batch
// that fall in a window are folded into it together (or are late together), so one row per
// (window, batch) says the same as one per record, at a third of the write cost.
// window_members lists the records of each window.
constexpr std::string_view kSchemaV3 = R"sql(
CREATE TABLE window_batches (
    window_id  INTEGER NOT NULL REFERENCES windows (id),
    batch_id   INTEGER NOT NULL REFERENCES batches (id),
    PRIMARY KEY (window_id, batch_id)
) WITHOUT ROWID;
CREATE INDEX window_batches_batch ON window_batches (batch_id);
INSERT OR IGNORE INTO window_batches (window_id, batch_id)
    SELECT DISTINCT wr.window_id, r.batch_id FROM window_records wr
    JOIN records r ON r.device_id = wr.device_id AND r.seq = wr.seq;
DROP TABLE window_records;
CREATE INDEX records_batch ON records (batch_id);
CREATE VIEW window_members AS
    SELECT wb.window_id AS window_id, r.device_id AS device_id, r.seq AS seq,
           r.batch_id AS batch_id
    FROM window_batches wb
    JOIN windows w ON w.id = wb.window_id
    JOIN records r ON r.batch_id = wb.batch_id
    WHERE r.t_ms >= w.start_ms AND r.t_ms < w.start_ms + w.length_ms AND r.kid = w.kid
      AND r.metric = w.metric AND r.schema = w.schema;
)sql";

// Version 4: risk scoring. Models as their owner's documents (weights included: the server
// is the model provider); requesters' registered Paillier keys; rows scored per token and
// UTC day, for the scoring budget.
constexpr std::string_view kSchemaV4 = R"sql(
CREATE TABLE models (
    id          TEXT PRIMARY KEY,
    document    TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);
CREATE TABLE scoring_keys (
    kid         TEXT PRIMARY KEY,
    document    TEXT NOT NULL,      -- the Paillier public key JSON
    token_id    INTEGER NOT NULL,   -- who registered it
    created_ms  INTEGER NOT NULL
);
CREATE TABLE scoring_usage (
    token_id  INTEGER NOT NULL,
    day       INTEGER NOT NULL,     -- Unix ms / 86,400,000
    rows      INTEGER NOT NULL,
    PRIMARY KEY (token_id, day)
) WITHOUT ROWID;
)sql";

// Version 5: cohort statistics. Cohorts are named patient sets (metadata the server may
// know); analysts' X25519 result keys; queries with their canonical document (what the
// approver signs), the encrypted aggregate, the signed decision and the sealed result.
constexpr std::string_view kSchemaV5 = R"sql(
CREATE TABLE cohorts (
    name         TEXT PRIMARY KEY,
    description  TEXT NOT NULL DEFAULT '',
    created_ms   INTEGER NOT NULL
);
CREATE TABLE cohort_members (
    cohort    TEXT NOT NULL REFERENCES cohorts (name),
    patient   TEXT NOT NULL,
    added_ms  INTEGER NOT NULL,
    PRIMARY KEY (cohort, patient)
) WITHOUT ROWID;
CREATE TABLE analyst_keys (
    token_id        INTEGER PRIMARY KEY,
    public_key_pem  TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    created_ms      INTEGER NOT NULL
);
CREATE TABLE queries (
    id           TEXT PRIMARY KEY,
    token_id     INTEGER NOT NULL,
    status       TEXT NOT NULL
                 CHECK (status IN ('pending', 'approved', 'rejected', 'released', 'refused')),
    document     TEXT NOT NULL,   -- canonical query document (cipherpulse-query/1)
    hash         TEXT NOT NULL,   -- its canonical hash
    aggregate    BLOB NOT NULL,   -- product of the windows' aggregates mod n^2
    decision     TEXT,            -- the approver's JWS
    result       TEXT,            -- the sealed release (cipherpulse-envelope/1)
    reason       TEXT,
    created_ms   INTEGER NOT NULL,
    decided_ms   INTEGER,
    finished_ms  INTEGER
);
CREATE INDEX queries_token ON queries (token_id, created_ms);
CREATE INDEX queries_status ON queries (status, created_ms);
)sql";

// Version 6: a query's epsilon in its own column, so that lists (the analyst's budget, the
// decryptor's round) need not read the documents, which run to megabytes.
constexpr std::string_view kSchemaV6 = R"sql(
ALTER TABLE queries ADD COLUMN epsilon_milli INTEGER;
UPDATE queries SET epsilon_milli = json_extract(document, '$.epsilon_milli');
)sql";

constexpr store::Migration kMigrations[] = {
    {1, kSchemaV1},
    {2, kSchemaV2},
    {3, kSchemaV3},
    {4, kSchemaV4},
    {5, kSchemaV5},
    {6, kSchemaV6},
};

}  // namespace

std::span<const store::Migration> server_migrations() {
    return kMigrations;
}

}  // namespace cipherpulse::server

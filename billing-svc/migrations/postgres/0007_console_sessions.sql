-- Console sessions (DESIGN §13): one row per sign-in, keyed by the SHA-256 of its token (the token itself is
-- only ever in the browser's cookie). `api_key_id` is the key that signed in, NULL for the operator (admin
-- key). A session ends at `expires_at`, at sign-out (`ended_at`), or when its key is revoked.
CREATE TABLE console_sessions (
    token_hash   TEXT PRIMARY KEY NOT NULL,
    api_key_id   TEXT,
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    ended_at     BIGINT
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);

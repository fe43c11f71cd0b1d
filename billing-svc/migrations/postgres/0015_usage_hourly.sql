-- Hourly sums of usage records (BILLING.md, "Usage and Costs APIs", "How it stays fast"): per account, UTC
-- hour, report (embeddings or not) and the columns the reports group by, the sums they show. An account's
-- hours before `usage_rollups.rolled_until` are summed here once (by billing-svc, a while after each hour
-- ends); the reports read these rows for those hours and the records themselves for the rest.
CREATE TABLE usage_hourly (
    account_id           TEXT NOT NULL,
    hour                 BIGINT NOT NULL,
    embeddings           BIGINT NOT NULL CHECK (embeddings IN (0, 1)),
    model                TEXT NOT NULL,
    api_key_id           TEXT NOT NULL,
    end_user_id          TEXT NOT NULL,
    workspace_id         TEXT NOT NULL,
    requests             BIGINT NOT NULL,
    input_tokens         BIGINT NOT NULL,
    output_tokens        BIGINT NOT NULL,
    cached_input_tokens  BIGINT NOT NULL,
    audio_input_tokens   BIGINT NOT NULL,
    audio_output_tokens  BIGINT NOT NULL,
    charged              BIGINT NOT NULL,
    charged_input        BIGINT NOT NULL,
    charged_fees         BIGINT NOT NULL,
    PRIMARY KEY (account_id, hour, embeddings, model, api_key_id, end_user_id, workspace_id)
);

CREATE TABLE usage_rollups (
    account_id    TEXT PRIMARY KEY NOT NULL,
    rolled_until  BIGINT NOT NULL
);

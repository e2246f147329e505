-- What the REST API reads and writes: alerts by recency, the notification log by alert, and
-- the seed's per-rule notification settings. (Ticks keep their BRIN index only: a btree on
-- (symbol_id, ts) cut the ingest rate by two thirds; the API reads the latest ticks from
-- memory and older ones by time windows.)

CREATE INDEX IF NOT EXISTS alerts_updated ON alerts (updated_at, fingerprint);
CREATE INDEX IF NOT EXISTS notification_log_outbox ON notification_log (outbox_id);

-- Where a rule's alerts also go: type email (recipient: an address, sent through the
-- configured SMTP server), slack or webhook (recipient: the URL). template overrides the text.
CREATE TABLE IF NOT EXISTS notification_settings (
    id            text        PRIMARY KEY,
    alert_rule_id text        NOT NULL,
    type          text        NOT NULL CHECK (type IN ('email', 'slack', 'webhook')),
    recipient     text        NOT NULL,
    template      text        NOT NULL DEFAULT '',
    enabled       boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS notification_settings_rule ON notification_settings (alert_rule_id);

-- What the REST API reads and writes: a per-symbol time index on ticks (the latest ticks of a
-- symbol, time ranges, cursor pages), alerts by recency, the notification log by alert, and
-- the seed's per-rule notification settings.

CREATE INDEX IF NOT EXISTS ticks_symbol_ts ON ticks (symbol_id, ts);
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

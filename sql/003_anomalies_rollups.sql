-- Anomalies found by the detectors and rollups per time bucket, written in batches.
-- Both are keyed, so a replay of the same ticks stores them once (rollups are replaced).

CREATE TABLE IF NOT EXISTS anomalies (
    ts          timestamptz      NOT NULL,
    symbol_id   integer          NOT NULL,
    type        text             NOT NULL,
    method      text             NOT NULL,
    severity    text             NOT NULL,
    score       double precision NOT NULL,
    confidence  double precision NOT NULL,
    observed    double precision NOT NULL,
    expected    double precision,
    lower_bound double precision,
    upper_bound double precision,
    window_size integer          NOT NULL,
    PRIMARY KEY (symbol_id, ts, type, method)
);

CREATE TABLE IF NOT EXISTS rollups (
    symbol_id    integer          NOT NULL,
    interval_s   integer          NOT NULL,
    start_time   timestamptz      NOT NULL,
    count        bigint           NOT NULL,
    sum          double precision NOT NULL,
    min          double precision NOT NULL,
    max          double precision NOT NULL,
    mean         double precision NOT NULL,
    open         double precision NOT NULL,
    close        double precision NOT NULL,
    vwap         double precision,
    median       double precision NOT NULL,
    std_dev      double precision NOT NULL,
    cv           double precision,
    p95          double precision NOT NULL,
    p99          double precision NOT NULL,
    price_range  double precision NOT NULL,
    volume       double precision NOT NULL,
    volume_min   double precision NOT NULL,
    volume_max   double precision NOT NULL,
    volume_range double precision NOT NULL,
    PRIMARY KEY (symbol_id, interval_s, start_time)
);

CREATE OR REPLACE VIEW anomalies_named AS
SELECT a.ts, s.name AS symbol, a.type, a.method, a.severity, a.score, a.confidence, a.observed,
       a.expected, a.lower_bound, a.upper_bound, a.window_size
FROM anomalies a JOIN symbols s ON s.id = a.symbol_id;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM create_hypertable('anomalies', 'ts', if_not_exists => true, migrate_data => true);
        PERFORM create_hypertable('rollups', 'start_time', if_not_exists => true, migrate_data => true);
    END IF;
END
$$;

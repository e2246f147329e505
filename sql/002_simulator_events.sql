-- Labelled events injected by the simulator, so detectors can be checked against them.
CREATE TABLE IF NOT EXISTS simulator_events (
    symbol    text             NOT NULL,
    kind      text             NOT NULL,
    start_ts  timestamptz      NOT NULL,
    end_ts    timestamptz      NOT NULL,
    magnitude double precision NOT NULL,
    PRIMARY KEY (symbol, kind, start_ts)
);

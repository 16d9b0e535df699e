-- admin: what staff set on the Settings page (issue 8). Lead time and grace everywhere, per
-- location and per space, the most specific set value winning; the PIN length and the alert
-- recipients everywhere only. A value not set (NULL, or no row) leaves the committed
-- configuration (provisioner.lead_time, provisioner.grace, provisioner.pin_digits,
-- alerts.recipients) in force.
CREATE TABLE staff_settings (
    scope            TEXT NOT NULL CHECK (scope IN ('everywhere', 'location', 'space')),
    -- '' everywhere; the location's or the space's id otherwise.
    scope_id         TEXT NOT NULL,
    lead_time_secs   INTEGER CHECK (lead_time_secs BETWEEN 0 AND 86400),
    grace_secs       INTEGER CHECK (grace_secs BETWEEN 0 AND 86400),
    -- RemoteLock documents no limit; third parties say 4-10 digits and locks commonly take
    -- 4-8 (remotelock-api.md, PIN rules): 4-8 is what every lock should accept.
    pin_digits       SMALLINT CHECK (pin_digits BETWEEN 4 AND 8),
    -- Comma-separated, as alerts.recipients is written.
    alert_recipients TEXT CHECK (alert_recipients <> ''),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by       TEXT NOT NULL,
    PRIMARY KEY (scope, scope_id),
    CHECK ((scope = 'everywhere') = (scope_id = '')),
    CHECK (scope = 'everywhere' OR (pin_digits IS NULL AND alert_recipients IS NULL))
);

-- The rule "the most specific wins" in one place: for each space, the lead time and grace
-- staff set and where each comes from (NULL: nothing set, the configuration applies). The
-- provisioner reads it with each booking; the booking page says which applied.
CREATE VIEW space_window_settings AS
SELECT s.space_id,
       coalesce(sp.lead_time_secs, lo.lead_time_secs, ev.lead_time_secs) AS lead_time_secs,
       CASE WHEN sp.lead_time_secs IS NOT NULL THEN 'space'
            WHEN lo.lead_time_secs IS NOT NULL THEN 'location'
            WHEN ev.lead_time_secs IS NOT NULL THEN 'everywhere' END AS lead_time_scope,
       coalesce(sp.grace_secs, lo.grace_secs, ev.grace_secs) AS grace_secs,
       CASE WHEN sp.grace_secs IS NOT NULL THEN 'space'
            WHEN lo.grace_secs IS NOT NULL THEN 'location'
            WHEN ev.grace_secs IS NOT NULL THEN 'everywhere' END AS grace_scope,
       ev.pin_digits
FROM spaces s
JOIN categories c ON c.category_id = s.category_id
LEFT JOIN staff_settings sp ON sp.scope = 'space' AND sp.scope_id = s.space_id
LEFT JOIN staff_settings lo ON lo.scope = 'location' AND lo.scope_id = c.location_id
LEFT JOIN staff_settings ev ON ev.scope = 'everywhere' AND ev.scope_id = '';

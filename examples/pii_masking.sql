-- A live, rate-limited stream of sign-ups with personal data masked before it
-- leaves the pipeline, printed to the terminal. Runs until Ctrl-C.
--
-- Run:  quiver run examples/pii_masking.sql
--
-- Shows: an unbounded datagen source at 5 rows per second, mask() (Kafka
-- Connect's MaskField), sha256_hex() for a joinable pseudonym, CASE, and the
-- stdout sink. Ctrl-C flushes, commits and prints the summary.

CREATE SOURCE signups (
    user_id BIGINT NOT NULL,
    email TEXT,
    phone TEXT,
    plan TEXT,
    age INT,
    signed_up TIMESTAMP
) WITH (
    connector = 'datagen',
    rows.per.second = '5',
    'fields.user_id.kind' = 'sequence',
    'fields.email.length' = '12',
    'fields.phone.length' = '10',
    'fields.plan.values' = 'free,pro,team',
    'fields.age.min' = '16',
    'fields.age.max' = '90',
    'fields.signed_up.kind' = 'sequence',
    'fields.signed_up.start' = '2024-06-01 12:00:00'
);

CREATE SINK signups_masked WITH (
    connector = 'stdout',
    format = 'json'
) AS
SELECT
    user_id,
    sha256_hex(email) AS email_id,
    mask(phone, '***-***-****') AS phone,
    plan,
    CASE WHEN age < 18 THEN 'minor' ELSE 'adult' END AS age_group,
    signed_up
FROM signups;

-- Runs once, when the data directory is initialised: the database of the prediction event
-- store. MLflow's database is POSTGRES_DB (created by the image's entrypoint).
CREATE DATABASE artpulse_events;

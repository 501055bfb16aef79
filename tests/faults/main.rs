//! Fault tests on the real `lexbridge serve` binary, each bounded in time
//! (`FAULT_EVENTS` sets the load, `FAULT_OUTAGE_SECONDS` the Graph outage;
//! the README gives larger runs): a SIGKILL under load (one instance on
//! SQLite, one of two on Postgres), Postgres restarted under load, and the
//! Graph API failing under load. None may lose an acknowledged event.

mod graph_outage;
mod kill;
mod postgres_restart;
mod support;

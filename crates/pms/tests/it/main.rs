//! The whole system as `pms up` runs it (gateway, auth, patients, billing, analytics, appointments on random ports, one fresh
//! PostgreSQL database), driven through the gateway like a client would.

mod access;
mod deployed;
mod docs;
mod flow;
mod hostile;
mod messages;
mod process;
mod scheduling;
mod system;
mod tokens;

//! Integration tests of the patients service: the real service on a random port, a fresh
//! PostgreSQL database per test, driven over HTTP like a client would.

mod access;
mod archive;
mod directory;
mod events;
mod helpers;
mod lifecycle;
mod partitions;
mod registration;
mod search;
mod shutdown;
mod validation;

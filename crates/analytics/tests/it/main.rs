//! Integration tests of the analytics service: the real service with its consumer group on a
//! real broker process (Tansu), a fresh PostgreSQL database per test.

mod consuming;
mod helpers;

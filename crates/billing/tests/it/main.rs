//! Integration tests of the billing service: the real service on random ports (REST and
//! gRPC), a fresh PostgreSQL database per test, called over real sockets.

mod grpc;
mod helpers;
mod rest;

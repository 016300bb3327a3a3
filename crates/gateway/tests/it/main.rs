//! Integration tests of the gateway alone: the real gateway on a random port in front of
//! stand-in services on real sockets, with tokens from a test key.

mod helpers;
mod in_process;
mod proxy;

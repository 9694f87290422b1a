//! The one integration-test binary of `ledge-git`: real repositories made with the `git` CLI in temp dirs
//! (the product code never runs `git`), fetched into mirrors, listed, filtered, read and diffed.

mod diff;
mod fetch_local;
mod fetch_network;
mod filter;
mod http_server;
mod listing;
mod read;
mod source;
mod support;

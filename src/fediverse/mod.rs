//! Talking to the fediverse: a Mastodon instance's OAuth 2 for signing in
//! to the console, and its admin measures (active users).

pub mod measures;
pub mod oauth;

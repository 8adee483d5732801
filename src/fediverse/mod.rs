//! Talking to the fediverse: a Mastodon instance's OAuth 2 for signing in
//! to the console.

pub mod oauth;

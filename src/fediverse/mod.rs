//! Talking to the fediverse: a Mastodon instance's OAuth 2 for signing in
//! to the console and for patrons linking their account, its admin
//! measures (active users), and the bot's posts.

pub mod measures;
pub mod oauth;
pub mod statuses;

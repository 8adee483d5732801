//! Admin authentication: argon2 passwords, short-lived HS256 tokens with
//! checked issuer and audience, and login rate limits.

pub mod password;
pub mod ratelimit;
pub mod token;

use sha2::{Digest, Sha256};

use crate::domain::text_enum;

/// The one-time setup token is stored by hash, like management links.
pub fn hash_setup_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

text_enum!(
    /// Owners change everything; viewers read reports and lists.
    Role { Owner => "owner", Viewer => "viewer" }
);

impl Role {
    pub fn can_write(self) -> bool {
        self == Role::Owner
    }
}

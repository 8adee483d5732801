//! Admin authentication: argon2 passwords, short-lived HS256 tokens with
//! checked issuer and audience, and login rate limits.

pub mod password;
pub mod ratelimit;
pub mod second_factor;
pub mod session;
pub mod token;

use sha2::{Digest, Sha256};

use crate::domain::text_enum;

/// Tokens that open something (the one-time setup token, console sessions)
/// are stored by hash: a copy of the database opens nothing.
pub fn hash_token(token: &str) -> String {
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

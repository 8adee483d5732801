//! Admin authentication: argon2 passwords, short-lived HS256 tokens with
//! checked issuer and audience, and login rate limits.

pub mod password;
pub mod ratelimit;
pub mod token;

use crate::domain::text_enum;

text_enum!(
    /// Owners change everything; viewers read reports and lists.
    Role { Owner => "owner", Viewer => "viewer" }
);

impl Role {
    pub fn can_write(self) -> bool {
        self == Role::Owner
    }
}

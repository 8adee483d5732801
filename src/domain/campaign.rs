//! Campaign settings: what is being funded, in which currency, toward what goal.

use super::{Checks, amount, money::Currency, text};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub name: String,
    pub description: String,
    pub currency: Currency,
    pub monthly_goal_minor: Option<i64>,
    /// Where patronage's public pages are reached, e.g. https://fund.example.social
    pub public_base_url: Option<String>,
}

impl Campaign {
    pub fn validate(self) -> Result<Self> {
        let mut checks = Checks::new();
        let name = checks.take(text("name", &self.name, 1, 120, false));
        let description = checks.take(text("description", &self.description, 0, 10_000, true));
        if let Some(goal) = self.monthly_goal_minor {
            checks.take(amount("monthly_goal_minor", goal));
        }
        let public_base_url = match &self.public_base_url {
            Some(u) => checks
                .take(super::supporter::WebsiteUrl::parse("public_base_url", u))
                .map(|u| Some(u.0.trim_end_matches('/').to_owned())),
            None => Some(None),
        };
        checks.finish()?;
        Ok(Campaign {
            name: name.unwrap_or_default(),
            description: description.unwrap_or_default(),
            public_base_url: public_base_url.flatten(),
            ..self
        })
    }
}

//! Importing another platform's export: which columns mean what, and each
//! row parsed into money, a person and (for recurring support) a pledge.
//! Pure: the caller hands in any `Read`, and rows come out one at a time,
//! so a file of any size is never held in memory. `service::imports`
//! decides what each row creates in the books.
//!
//! Formats:
//! - `opencollective`: the `transactions.csv` export (REST
//!   `/v2/{slug}/transactions.csv` with field names as headers, or the
//!   dashboard's export with its column labels). Only money that came in is
//!   imported: CREDIT rows of kind CONTRIBUTION or ADDED_FUNDS become
//!   payments, their refunds become refunds; fees, tips and expenses are
//!   skipped. A contribution is recurring when "Contribution Frequency" says
//!   MONTHLY or YEARLY, or else when its description starts "Monthly
//!   contribution" or "Yearly contribution" (the tier named in its trailing
//!   parentheses, as Open Collective writes it).
//! - `csv`: any file, with a column mapping; `patreon`, `liberapay`, `kofi`
//!   and `github_sponsors` are mappings with the columns those exports use.

use std::{collections::HashMap, io::Read};

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};

use super::{
    money::{Currency, MAX_AMOUNT_MINOR, Money},
    pledge::{PledgeStatus, Source},
    supporter::Email,
    text_enum,
    tier::Interval,
};
use crate::error::{Error, Result};

text_enum!(
    /// What a file is: Open Collective's transactions, a generic CSV with a
    /// mapping, or a generic CSV laid out as one platform exports it.
    Format {
        Opencollective => "opencollective",
        Csv => "csv",
        Patreon => "patreon",
        Liberapay => "liberapay",
        Kofi => "kofi",
        GithubSponsors => "github_sponsors",
    }
);

impl Format {
    /// The ledger and pledge source rows of this format are keyed under.
    pub fn source(self) -> Source {
        match self {
            Format::Opencollective => Source::Opencollective,
            Format::Csv => Source::Import,
            Format::Patreon => Source::Patreon,
            Format::Liberapay => Source::Liberapay,
            Format::Kofi => Source::Kofi,
            Format::GithubSponsors => Source::GithubSponsors,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Format::Opencollective => "Open Collective transactions.csv",
            Format::Csv => "Generic CSV (with a column mapping)",
            Format::Patreon => "Patreon members list",
            Format::Liberapay => "Liberapay patrons",
            Format::Kofi => "Ko-fi transactions",
            Format::GithubSponsors => "GitHub Sponsors export",
        }
    }
}

/// What one row of a file stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// A payment: booked in the ledger, and part of a pledge when recurring.
    Payment,
    /// A member list's line: a pledge (no money is booked).
    Member,
}

/// The fields a mapping can name a column for.
pub const FIELDS: [&str; 13] = [
    "date",
    "name",
    "email",
    "handle",
    "amount",
    "currency",
    "interval",
    "tier",
    "external_id",
    "status",
    "paid_through",
    "pledge_amount",
    "pledge_key",
];

/// Which column holds each field (by header, compared without case, spaces
/// or punctuation: "Transaction ID" matches `transaction_id`), each field
/// with the headers tried in order, and defaults for what the file lacks.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub columns: HashMap<&'static str, Vec<String>>,
    pub rows: RowKind,
    /// For files without a currency column.
    pub currency: Option<Currency>,
}

impl Mapping {
    /// A generic CSV's mapping from `field=Header` pairs. Without a
    /// mapping for a field, a column named like the field is used.
    pub fn generic(pairs: &[(String, String)], currency: Option<Currency>) -> Result<Mapping> {
        let mut columns: HashMap<&'static str, Vec<String>> = HashMap::new();
        for (field, header) in pairs {
            let Some(known) = FIELDS.iter().find(|f| **f == field.trim()) else {
                return Err(Error::field(
                    "mapping",
                    format!(
                        "unknown field {:?}; the fields are {}",
                        field.trim(),
                        FIELDS.join(", ")
                    ),
                ));
            };
            if !header.trim().is_empty() {
                columns.insert(known, vec![header.trim().to_owned()]);
            }
        }
        for field in FIELDS {
            columns
                .entry(field)
                .or_insert_with(|| vec![field.to_owned()]);
        }
        Ok(Mapping {
            columns,
            rows: RowKind::Payment,
            currency,
        })
    }

    /// The mapping a format's export needs. `overrides` (field, header)
    /// replace a preset's columns.
    pub fn preset(
        format: Format,
        overrides: &[(String, String)],
        currency: Option<Currency>,
    ) -> Result<Mapping> {
        let mut m = match format {
            Format::Csv => return Mapping::generic(overrides, currency),
            Format::Opencollective => preset(
                RowKind::Payment,
                &[
                    (
                        "date",
                        &["datetime", "Date & Time", "Effective Date & Time", "date"],
                    ),
                    ("name", &["oppositeAccountName", "Opposite Account Name"]),
                    ("email", &["oppositeAccountEmail", "Opposite Account Email"]),
                    (
                        "handle",
                        &["oppositeAccountSlug", "Opposite Account Handle"],
                    ),
                    // The gross amount when exported; the single amount
                    // column (net of fees folded into it) otherwise.
                    (
                        "amount",
                        &[
                            "amount",
                            "Gross Amount",
                            "Amount Single Column",
                            "netAmount",
                        ],
                    ),
                    ("currency", &["currency", "Currency"]),
                    ("interval", &["orderFrequency", "Contribution Frequency"]),
                    (
                        "external_id",
                        &[
                            "legacyId",
                            "Transaction ID",
                            "publicId",
                            "Transaction Public ID",
                            "id",
                            "Transaction GraphQL ID",
                            "shortId",
                            "Short Transaction ID",
                        ],
                    ),
                    (
                        "pledge_key",
                        &[
                            "orderLegacyId",
                            "Contribution ID",
                            "orderId",
                            "Contribution GraphQL ID",
                        ],
                    ),
                    ("oc_type", &["type", "Credit/Debit"]),
                    ("oc_kind", &["kind", "Kind"]),
                    (
                        "oc_refund",
                        &["isRefund", "Is Refund", "isReverse", "Is Reverse"],
                    ),
                    ("oc_description", &["description", "Description"]),
                ],
            ),
            // Patreon's members list (Audience > Members > Export CSV).
            Format::Patreon => preset(
                RowKind::Member,
                &[
                    ("date", &["Patronage Since Date"]),
                    ("name", &["Name"]),
                    ("email", &["Email"]),
                    ("amount", &["Pledge Amount"]),
                    ("currency", &["Currency"]),
                    ("interval", &["Charge Frequency"]),
                    ("tier", &["Tier"]),
                    ("external_id", &["User ID"]),
                    ("status", &["Patron Status"]),
                    ("paid_through", &["Last Charge Date"]),
                ],
            ),
            // Liberapay's public patrons list (/{username}/patrons/public.csv).
            Format::Liberapay => preset(
                RowKind::Member,
                &[
                    ("date", &["pledge_date"]),
                    ("name", &["patron_public_name", "patron_username"]),
                    ("email", &["patron_email", "email"]),
                    ("handle", &["patron_username"]),
                    ("amount", &["weekly_amount"]),
                    ("currency", &["donation_currency"]),
                    ("interval", &["interval"]),
                    ("external_id", &["patron_id"]),
                ],
            ),
            // Ko-fi's transaction history (layout not published by Ko-fi).
            Format::Kofi => preset(
                RowKind::Payment,
                &[
                    ("date", &["DateTime (UTC)", "DateTime", "Date", "Timestamp"]),
                    ("name", &["From", "Name", "Supporter"]),
                    ("email", &["Email", "Buyer Email"]),
                    ("amount", &["Received", "Amount"]),
                    ("currency", &["Currency"]),
                    ("interval", &["TransactionType", "Transaction Type", "Type"]),
                    ("tier", &["Item", "Tier"]),
                    (
                        "external_id",
                        &["TransactionId", "Transaction ID", "Reference"],
                    ),
                ],
            ),
            // GitHub Sponsors (Dashboard > Your sponsors > Export, CSV).
            Format::GithubSponsors => preset(
                RowKind::Payment,
                &[
                    ("date", &["Transaction Date"]),
                    ("name", &["Sponsor Profile Name", "Sponsor Handle"]),
                    ("email", &["Sponsor Public Email"]),
                    ("handle", &["Sponsor Handle"]),
                    ("amount", &["Processed Amount"]),
                    ("pledge_amount", &["Tier Monthly Amount"]),
                    ("interval", &["Tier Name"]),
                    ("yearly", &["Is Yearly?"]),
                    ("external_id", &["Transaction ID"]),
                    ("status", &["Status"]),
                ],
            ),
        };
        if format == Format::GithubSponsors {
            m.currency = Some(currency.unwrap_or(Currency::parse("USD").expect("USD")));
        } else {
            m.currency = currency;
        }
        for (field, header) in overrides {
            let Some(known) = FIELDS.iter().find(|f| **f == field.trim()) else {
                return Err(Error::field(
                    "mapping",
                    format!("unknown field {:?}", field.trim()),
                ));
            };
            if !header.trim().is_empty() {
                m.columns.insert(known, vec![header.trim().to_owned()]);
            }
        }
        Ok(m)
    }
}

fn preset(rows: RowKind, fields: &[(&'static str, &[&str])]) -> Mapping {
    Mapping {
        columns: fields
            .iter()
            .map(|(f, hs)| (*f, hs.iter().map(|h| (*h).to_owned()).collect()))
            .collect(),
        rows,
        currency: None,
    }
}

/// A header as compared: lower case, letters and digits only.
fn normal(header: &str) -> String {
    header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// How often a row's support repeats, as the file says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    Once,
    Week,
    Month,
    Year,
}

/// Reads "MONTHLY", "Monthly Donation", "$5 a month", "yearly", "annual",
/// "ONETIME", "one time", "Donation", "week" and the like; an empty cell
/// is a one-time payment.
pub fn parse_cadence(raw: &str) -> std::result::Result<Cadence, String> {
    let t = raw.trim().to_lowercase();
    if t.contains("month") {
        Ok(Cadence::Month)
    } else if t.contains("year") || t.contains("annual") {
        Ok(Cadence::Year)
    } else if t.contains("week") {
        Ok(Cadence::Week)
    } else if t.is_empty()
        || [
            "once", "one time", "one-time", "onetime", "single", "donation", "tip", "gift",
        ]
        .iter()
        .any(|w| t.contains(w))
    {
        Ok(Cadence::Once)
    } else {
        Err(format!(
            "interval {:?} is not one of month, year, week or one-time",
            raw.trim()
        ))
    }
}

/// An amount as exports write it, exactly, in minor units: "12", "12.50",
/// "-0.59", "$4.52", "€10,50", "1,234.56", "1.234,56", "1 234,56".
/// A lone separator followed by exactly three digits ("1,000", "1.000") is
/// refused: it is a thousand or a one, depending on the country. Never
/// goes through a float.
pub fn parse_amount(raw: &str, currency: Currency) -> std::result::Result<i64, String> {
    let text = raw.trim();
    let negative = text.starts_with('-') || text.ends_with('-') || text.contains("-$");
    // Currency symbols and codes around the number are dropped; what is
    // left must be digits and separators.
    let kept: String = text
        .chars()
        .filter(|c| {
            c.is_ascii_digit() || matches!(c, '.' | ',' | ' ' | '\u{a0}' | '\u{202f}' | '\'')
        })
        .collect();
    let kept = kept.trim_matches([' ', '\u{a0}', '\u{202f}']);
    if kept.is_empty() || !kept.chars().any(|c| c.is_ascii_digit()) {
        return Err(format!("amount {:?} is not a number", raw.trim()));
    }
    // Letters may only be the currency ("EUR 12", "US$ 5", "CA$ 5").
    let letters = text
        .to_ascii_uppercase()
        .replace(currency.code(), "")
        .chars()
        .filter(|c| c.is_alphabetic())
        .count();
    if letters > 2 {
        return Err(format!("amount {:?} is not a number", raw.trim()));
    }
    let ambiguous = || {
        format!(
            "amount {:?} is ambiguous: write it without thousands separators, like 1000 or 1000.00",
            raw.trim()
        )
    };
    let groups_ok = |s: &str, sep: char| {
        let mut parts = s.split(sep);
        let first = parts.next().unwrap_or("");
        !first.is_empty()
            && first.len() <= 3
            && first.chars().all(|c| c.is_ascii_digit())
            && parts.all(|p| p.len() == 3 && p.chars().all(|c| c.is_ascii_digit()))
    };
    // Spaces and apostrophes only ever group thousands.
    let spaced: String = kept
        .chars()
        .map(|c| {
            if matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '\'') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let (whole, fraction) = {
        let dots = spaced.matches('.').count();
        let commas = spaced.matches(',').count();
        let last_sep = spaced.rfind(['.', ',']);
        match (dots, commas, last_sep) {
            (0, 0, _) => (spaced.clone(), String::new()),
            (_, _, Some(i)) if dots > 0 && commas > 0 => {
                // Both: the last one is the decimal point, the other groups.
                let decimal = spaced[i..].chars().next().expect("a separator");
                let group = if decimal == '.' { ',' } else { '.' };
                if spaced[i + 1..].contains(group) || spaced[..i].contains(decimal) {
                    return Err(ambiguous());
                }
                let whole = &spaced[..i];
                if !groups_ok(&whole.replace('_', &group.to_string()), group) {
                    return Err(ambiguous());
                }
                (whole.replace([group, '_'], ""), spaced[i + 1..].to_owned())
            }
            (n, 0, Some(i)) | (0, n, Some(i)) => {
                let sep = spaced[i..].chars().next().expect("a separator");
                if n > 1 {
                    // "1,000,000": grouping only.
                    if !groups_ok(&spaced.replace('_', &sep.to_string()), sep) {
                        return Err(ambiguous());
                    }
                    (spaced.replace([sep, '_'], ""), String::new())
                } else {
                    let after = &spaced[i + 1..];
                    if after.len() == 3 && currency.exponent() != 3 {
                        return Err(ambiguous());
                    }
                    (spaced[..i].to_owned(), after.to_owned())
                }
            }
            _ => return Err(ambiguous()),
        }
    };
    if whole.contains('_') && !groups_ok(&whole.replace('_', ","), ',') {
        return Err(ambiguous());
    }
    let whole = whole.replace('_', "");
    let whole = if whole.is_empty() {
        "0".to_owned()
    } else {
        whole
    };
    let exp = currency.exponent() as usize;
    if fraction.len() > exp {
        // "4.520" is still 4.52; "4.525" is not a CUR amount.
        let (keep, rest) = fraction.split_at(exp);
        if rest.chars().any(|c| c != '0') {
            return Err(format!(
                "amount {:?} has more decimals than {} has",
                raw.trim(),
                currency.code()
            ));
        }
        return finish(&whole, keep, currency, negative, raw);
    }
    finish(&whole, &fraction, currency, negative, raw)
}

fn finish(
    whole: &str,
    fraction: &str,
    currency: Currency,
    negative: bool,
    raw: &str,
) -> std::result::Result<i64, String> {
    let normalized = if fraction.is_empty() {
        whole.to_owned()
    } else {
        format!("{whole}.{fraction}")
    };
    let money = Money::parse_decimal(&normalized, currency)
        .map_err(|_| format!("amount {:?} is not a number", raw.trim()))?;
    if money.amount_minor > MAX_AMOUNT_MINOR {
        return Err(format!("amount {:?} is too large", raw.trim()));
    }
    Ok(if negative {
        -money.amount_minor
    } else {
        money.amount_minor
    })
}

/// A date as exports write it: RFC 3339, "2023-05-07 21:46:01 +0200",
/// "2017-01-20T19:21:45" or "2024-01-15 12:34:56.123456" (UTC), or a day
/// ("2024-01-15", read as noon UTC). Day-first or month-first dates
/// ("03/04/2024") are refused: they are ambiguous.
pub fn parse_date(raw: &str) -> std::result::Result<DateTime<Utc>, String> {
    let t = raw.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M:%S%.f %z"] {
        if let Ok(d) = DateTime::parse_from_str(t, f) {
            return Ok(d.with_timezone(&Utc));
        }
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(d.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(12, 0, 0).expect("noon").and_utc());
    }
    Err(format!(
        "date {t:?} is not a date like 2024-01-31 or 2024-01-31T12:00:00Z"
    ))
}

/// A person as the row names them. The email matches an existing
/// supporter (without case); without one, the platform's handle or id
/// stands in (see `service::imports`).
#[derive(Debug, Clone)]
pub struct Person {
    pub email: Option<Email>,
    pub handle: Option<String>,
    pub name: String,
}

/// The pledge a row belongs to (recurring payments) or describes (member
/// lists).
#[derive(Debug, Clone)]
pub struct PledgePlan {
    /// Unique per platform: the pledges' `external_ref`.
    pub key: String,
    pub interval: Interval,
    pub amount_minor: i64,
    pub tier: Option<String>,
    /// What the file says, when it says it; otherwise the pledge is active
    /// while paid through (see `status_at`).
    pub status: Option<PledgeStatus>,
    /// The end of the period the latest payment covers.
    pub paid_through: Option<DateTime<Utc>>,
    /// A weekly amount turned into this monthly one (Liberapay).
    pub from_weekly: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Movement {
    /// Money in, once.
    Gift,
    /// Money in, as part of a pledge.
    Recurring,
    /// Money given back (booked negative).
    Refund,
    /// A pledge only: no money is booked.
    Pledge,
}

/// One row, ready to be booked.
#[derive(Debug, Clone)]
pub struct Row {
    pub line: u64,
    /// The platform's id for the row: the ledger's (or, for a member list,
    /// the pledge's) `external_ref`.
    pub external_id: String,
    pub at: DateTime<Utc>,
    pub person: Person,
    pub money: Money,
    pub movement: Movement,
    pub pledge: Option<PledgePlan>,
}

/// What a line of the file is.
#[derive(Debug, Clone)]
pub enum Parsed {
    Row(Box<Row>),
    /// Not money coming in (a fee, an expense...): left out, with why.
    Skip(String),
}

/// A pledge paid through `paid_through` is active until then and for a
/// grace period after; ended at `paid_through` otherwise.
pub const GRACE_DAYS: i64 = 15;

pub fn status_at(paid_through: DateTime<Utc>, now: DateTime<Utc>) -> PledgeStatus {
    if paid_through + Duration::days(GRACE_DAYS) >= now {
        PledgeStatus::Active
    } else {
        PledgeStatus::Canceled
    }
}

/// The end of the period a payment at `at` covers.
pub fn period_end(at: DateTime<Utc>, interval: Interval) -> DateTime<Utc> {
    let months = match interval {
        Interval::Month => 1,
        Interval::Year => 12,
    };
    at.checked_add_months(chrono::Months::new(months))
        .unwrap_or(at)
}

/// A file's rows, read one at a time. Each item is a line number and the
/// row, or why that line cannot be imported.
pub struct Rows<R: Read> {
    reader: csv::Reader<R>,
    columns: HashMap<&'static str, usize>,
    format: Format,
    mapping: Mapping,
    record: csv::StringRecord,
    now: DateTime<Utc>,
}

/// The header of `field` found in the file, if any.
fn find(headers: &csv::StringRecord, candidates: &[String]) -> Option<usize> {
    for c in candidates {
        let want = normal(c);
        if let Some(i) = headers.iter().position(|h| normal(h) == want) {
            return Some(i);
        }
    }
    None
}

impl<R: Read> Rows<R> {
    /// Reads the header line and finds every mapped column. A file without
    /// a column the format needs is refused as a whole, naming it.
    pub fn new(input: R, format: Format, mapping: Mapping, now: DateTime<Utc>) -> Result<Self> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::None)
            .from_reader(input);
        let headers = reader
            .headers()
            .map_err(|e| Error::field("file", format!("cannot read the header line: {e}")))?
            .clone();
        let mut columns = HashMap::new();
        for (field, candidates) in &mapping.columns {
            if let Some(i) = find(&headers, candidates) {
                columns.insert(*field, i);
            }
        }
        let mut needed = vec!["amount", "external_id"];
        if mapping.currency.is_none() {
            needed.push("currency");
        }
        if format == Format::Opencollective {
            needed.extend(["date", "oc_type", "oc_kind"]);
        } else {
            needed.push("date");
        }
        let missing: Vec<String> = needed
            .iter()
            .filter(|f| !columns.contains_key(**f))
            .map(|f| {
                let tried = mapping.columns.get(*f).cloned().unwrap_or_default();
                format!("{f} (tried: {})", tried.join(", "))
            })
            .collect();
        if !missing.is_empty() {
            return Err(Error::field(
                "file",
                format!(
                    "no column for {}; map it, or give a default currency",
                    missing.join("; ")
                ),
            ));
        }
        Ok(Rows {
            reader,
            columns,
            format,
            mapping,
            record: csv::StringRecord::new(),
            now,
        })
    }

    fn cell(&self, field: &str) -> &str {
        self.columns
            .get(field)
            .and_then(|i| self.record.get(*i))
            .map(str::trim)
            .unwrap_or("")
    }

    fn parse_row(&self, line: u64) -> std::result::Result<Parsed, String> {
        if self.record.iter().all(|c| c.trim().is_empty()) {
            return Ok(Parsed::Skip("empty line".into()));
        }
        let mut movement = Movement::Gift;
        let mut interval_text = self.cell("interval").to_owned();
        let mut tier = non_empty(self.cell("tier"));
        if self.format == Format::Opencollective {
            let kind = self.cell("oc_kind").to_ascii_uppercase();
            let credit = self.cell("oc_type").eq_ignore_ascii_case("CREDIT");
            let refund = !self.cell("oc_refund").is_empty();
            if !matches!(kind.as_str(), "CONTRIBUTION" | "ADDED_FUNDS") {
                return Ok(Parsed::Skip(format!(
                    "{} {}: only contributions and added funds are imported",
                    self.cell("oc_type"),
                    kind
                )));
            }
            if refund && !credit {
                movement = Movement::Refund;
            } else if !credit {
                return Ok(Parsed::Skip(format!(
                    "DEBIT {kind}: money going out is not imported"
                )));
            }
            let description = self.cell("oc_description");
            if interval_text.is_empty() {
                let d = description.to_lowercase();
                if d.starts_with("monthly contribution") {
                    interval_text = "month".into();
                } else if d.starts_with("yearly contribution") {
                    interval_text = "year".into();
                }
            }
            // "Monthly contribution from Ann (Bronze)": the tier.
            if tier.is_none()
                && !interval_text.is_empty()
                && description.ends_with(')')
                && let Some(open) = description.rfind('(')
            {
                tier = non_empty(&description[open + 1..description.len() - 1]);
            }
        }
        let currency = match non_empty(self.cell("currency")) {
            Some(code) => Currency::parse(&code)
                .ok_or_else(|| format!("currency {code:?} is not an ISO 4217 code"))?,
            None => self
                .mapping
                .currency
                .ok_or_else(|| "no currency in the row and no default currency".to_owned())?,
        };
        let raw_amount = self.cell("amount");
        let mut amount = parse_amount(raw_amount, currency)?;
        if movement == Movement::Refund {
            amount = amount.abs();
        } else if amount < 0 {
            return Err(format!(
                "amount {raw_amount:?} is negative; refunds are not read from this column"
            ));
        }
        if amount == 0 {
            return Ok(Parsed::Skip("amount is zero".into()));
        }
        let external_id = self.cell("external_id");
        if external_id.is_empty() {
            return Err(
                "no external id: every row needs the platform's id to be imported once".into(),
            );
        }
        if external_id.chars().count() > 200 {
            return Err("external id is longer than 200 characters".into());
        }
        let at = parse_date(self.cell("date"))?;
        if at > self.now + Duration::days(1) {
            return Err(format!("date {:?} is in the future", self.cell("date")));
        }
        if at.date_naive() < NaiveDate::from_ymd_opt(2000, 1, 1).expect("a date") {
            return Err(format!("date {:?} is before 2000", self.cell("date")));
        }
        let email = match non_empty(self.cell("email")) {
            Some(e) => Some(
                Email::parse("email", &e).map_err(|_| format!("email {e:?} is not an address"))?,
            ),
            None => None,
        };
        let handle = non_empty(self.cell("handle"));
        let name = non_empty(self.cell("name"))
            .or_else(|| handle.clone())
            .or_else(|| {
                email
                    .as_ref()
                    .map(|e| e.address.split('@').next().unwrap_or("").to_owned())
            })
            .unwrap_or_else(|| "Anonymous".to_owned());
        if name
            .chars()
            .any(|c| c.is_control() || super::is_bidi_control(c))
        {
            return Err("name contains control characters".into());
        }
        let name: String = name.chars().take(100).collect();
        let person = Person {
            email,
            handle,
            name,
        };

        // GitHub: "Is Yearly?" decides between its month and year tiers.
        if self.cell("yearly").eq_ignore_ascii_case("true") {
            interval_text = "year".into();
        }
        let mut cadence = parse_cadence(&interval_text)?;
        if self.format == Format::Liberapay && interval_text.is_empty() {
            cadence = Cadence::Week;
        }
        let money = Money::new(amount, currency);
        let status = match non_empty(self.cell("status")) {
            None => None,
            Some(s) => parse_status(&s)?,
        };
        let member = self.mapping.rows == RowKind::Member;
        if cadence == Cadence::Once {
            if member {
                return Err(format!(
                    "interval {interval_text:?}: a member list's line must be monthly or yearly"
                ));
            }
            return Ok(Parsed::Row(Box::new(Row {
                line,
                external_id: external_id.to_owned(),
                at,
                person,
                money,
                movement,
                pledge: None,
            })));
        }
        let (interval, pledge_amount, from_weekly) = {
            let explicit = match non_empty(self.cell("pledge_amount")) {
                Some(p) => Some(parse_amount(&p, currency)?.abs()),
                None => None,
            };
            let base = explicit.unwrap_or(amount);
            match cadence {
                Cadence::Week => {
                    // 52 weeks a year, a twelfth a month, rounded to the
                    // nearest minor unit: integers only.
                    let monthly = base
                        .checked_mul(52)
                        .map(|x| (x + 6) / 12)
                        .ok_or("amount is too large")?;
                    (Interval::Month, monthly, Some(base))
                }
                Cadence::Month => (Interval::Month, base, None),
                _ => (Interval::Year, base, None),
            }
        };
        if pledge_amount <= 0 {
            return Ok(Parsed::Skip("pledge amount is zero".into()));
        }
        let paid_through = if member {
            match non_empty(self.cell("paid_through")) {
                Some(d) => Some(period_end(parse_date(&d)?, interval)),
                None => None,
            }
        } else {
            Some(period_end(at, interval))
        };
        let key = if member {
            external_id.to_owned()
        } else {
            match non_empty(self.cell("pledge_key")) {
                Some(k) => format!("order:{k}"),
                None => {
                    let who = person
                        .email
                        .as_ref()
                        .map(|e| e.normalized.clone())
                        .or_else(|| person.handle.clone())
                        .ok_or(
                            "a recurring payment needs an email or a handle to find its pledge",
                        )?;
                    format!("{who}:{interval}")
                }
            }
        };
        Ok(Parsed::Row(Box::new(Row {
            line,
            external_id: external_id.to_owned(),
            at,
            person,
            money,
            movement: if member {
                Movement::Pledge
            } else if movement == Movement::Refund {
                Movement::Refund
            } else {
                Movement::Recurring
            },
            pledge: Some(PledgePlan {
                key,
                interval,
                amount_minor: pledge_amount,
                tier,
                status,
                paid_through,
                from_weekly,
            }),
        })))
    }
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// Patreon's "Active patron", "Former patron", "Declined patron"; GitHub's
/// "settled"; plain "active", "canceled"...
fn parse_status(raw: &str) -> std::result::Result<Option<PledgeStatus>, String> {
    let t = raw.to_lowercase();
    Ok(
        if t.contains("declined") || t.contains("past due") || t.contains("past_due") {
            Some(PledgeStatus::PastDue)
        } else if t.contains("former")
            || t.contains("cancel")
            || t.contains("ended")
            || t.contains("inactive")
        {
            Some(PledgeStatus::Canceled)
        } else if t.contains("active") {
            Some(PledgeStatus::Active)
        } else if ["settled", "paid", "succeeded", "completed", "refunded"]
            .iter()
            .any(|w| t.contains(w))
        {
            // A payment's own state: says nothing of the pledge.
            None
        } else {
            return Err(format!(
                "status {:?} is not active, former or declined",
                raw.trim()
            ));
        },
    )
}

impl<R: Read> Iterator for Rows<R> {
    type Item = (u64, std::result::Result<Parsed, String>);

    fn next(&mut self) -> Option<Self::Item> {
        match self.reader.read_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => {
                let line = self.record.position().map_or(0, |p| p.line());
                Some((line, self.parse_row(line)))
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                let message = match e.kind() {
                    csv::ErrorKind::Utf8 { .. } => "not valid UTF-8 text".to_owned(),
                    _ => "not a readable CSV line".to_owned(),
                };
                // A broken line does not stop the reader: the next call
                // goes on from the line after it.
                Some((line, Err(message)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn amounts_are_exact_in_minor_units() {
        assert_eq!(parse_amount("12", eur()), Ok(1200));
        assert_eq!(parse_amount("12.5", eur()), Ok(1250));
        assert_eq!(parse_amount("€10,50", eur()), Ok(1050));
        assert_eq!(
            parse_amount("$4.52", Currency::parse("USD").unwrap()),
            Ok(452)
        );
        assert_eq!(parse_amount("-0.59", eur()), Ok(-59));
        assert_eq!(parse_amount("1,234.56", eur()), Ok(123456));
        assert_eq!(parse_amount("1.234,56", eur()), Ok(123456));
        assert_eq!(parse_amount("1 234,56", eur()), Ok(123456));
        assert_eq!(parse_amount("1,000,000", eur()), Ok(100_000_000));
        assert_eq!(parse_amount("0.1", eur()), Ok(10));
        assert_eq!(
            parse_amount("1000", Currency::parse("JPY").unwrap()),
            Ok(1000)
        );
        assert_eq!(
            parse_amount("1.500", Currency::parse("KWD").unwrap()),
            Ok(1500)
        );
    }

    #[test]
    fn ambiguous_or_wrong_amounts_are_refused_with_a_reason() {
        for bad in [
            "1,000",
            "1.000",
            "1,00,000.00",
            "1.2.3,4",
            "abc",
            "",
            "12.3456",
            "12 apples",
        ] {
            let e = parse_amount(bad, eur()).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
        assert!(
            parse_amount("1,000", eur())
                .unwrap_err()
                .contains("ambiguous")
        );
        assert!(
            parse_amount("12.3456", eur())
                .unwrap_err()
                .contains("decimals")
        );
    }

    #[test]
    fn dates_in_export_forms() {
        assert_eq!(
            parse_date("2023-05-07 21:46:01 +0200")
                .unwrap()
                .to_rfc3339(),
            "2023-05-07T19:46:01+00:00"
        );
        assert_eq!(
            parse_date("2017-01-20T19:21:45").unwrap().to_rfc3339(),
            "2017-01-20T19:21:45+00:00"
        );
        assert_eq!(
            parse_date("2024-01-15").unwrap().to_rfc3339(),
            "2024-01-15T12:00:00+00:00"
        );
        assert!(parse_date("03/04/2024").is_err());
    }

    #[test]
    fn cadences() {
        assert_eq!(parse_cadence("MONTHLY"), Ok(Cadence::Month));
        assert_eq!(parse_cadence("$5 a month"), Ok(Cadence::Month));
        assert_eq!(parse_cadence("yearly"), Ok(Cadence::Year));
        assert_eq!(parse_cadence("ONETIME"), Ok(Cadence::Once));
        assert_eq!(parse_cadence(""), Ok(Cadence::Once));
        assert!(parse_cadence("fortnightly-ish").is_err());
    }

    fn rows(format: Format, text: &str) -> Vec<(u64, std::result::Result<Parsed, String>)> {
        let mapping = Mapping::preset(format, &[], None).unwrap();
        Rows::new(text.as_bytes(), format, mapping, Utc::now())
            .unwrap()
            .collect()
    }

    #[test]
    fn open_collective_keeps_contributions_and_skips_fees() {
        let text = "\"Effective Date & Time\",\"Transaction ID\",\"Description\",\"Credit/Debit\",\"Kind\",\"Amount Single Column\",\"Currency\",\"Is Reverse\",\"Opposite Account Handle\",\"Opposite Account Name\"\n\
            \"2025-12-23T10:59:07\",11299548,\"Monthly contribution from Guest (Bronze)\",\"CREDIT\",\"CONTRIBUTION\",2,\"USD\",\"\",\"guest-d1\",\"Guest\"\n\
            \"2025-12-23T10:59:07\",11299545,\"Transaction to PayPal\",\"DEBIT\",\"PAYMENT_PROCESSOR_FEE\",-0.59,\"USD\",\"\",\"paypal\",\"PayPal\"\n\
            \"2025-12-20T10:00:00\",11299500,\"Financial contribution from Ann\",\"CREDIT\",\"CONTRIBUTION\",25,\"USD\",\"\",\"ann\",\"Ann\"\n";
        let out = rows(Format::Opencollective, text);
        assert_eq!(out.len(), 3);
        let (line, Ok(Parsed::Row(first))) = &out[0] else {
            panic!("{:?}", out[0])
        };
        assert_eq!(*line, 2);
        assert_eq!(first.money.amount_minor, 200);
        assert_eq!(first.movement, Movement::Recurring);
        let pledge = first.pledge.as_ref().unwrap();
        assert_eq!(pledge.interval, Interval::Month);
        assert_eq!(pledge.tier.as_deref(), Some("Bronze"));
        assert_eq!(pledge.key, "guest-d1:month");
        assert!(matches!(out[1].1, Ok(Parsed::Skip(_))));
        let (_, Ok(Parsed::Row(gift))) = &out[2] else {
            panic!()
        };
        assert_eq!(gift.movement, Movement::Gift);
        assert!(gift.pledge.is_none());
    }

    #[test]
    fn bad_lines_carry_their_line_number_and_the_rest_go_on() {
        let text = "date,email,amount,currency,external_id\n\
            2024-01-01,a@example.org,10,EUR,r1\n\
            2024-01-02,b@example.org,\"1,000\",EUR,r2\n\
            2024-13-40,c@example.org,10,EUR,r3\n\
            2024-01-04,d@example.org,10,EUR,r4\n";
        let out = rows(Format::Csv, text);
        let bad: Vec<u64> = out
            .iter()
            .filter(|(_, r)| r.is_err())
            .map(|(l, _)| *l)
            .collect();
        assert_eq!(bad, vec![3, 4]);
        assert!(matches!(out[3].1, Ok(Parsed::Row(_))));
    }

    #[test]
    fn weekly_amounts_become_monthly_exactly() {
        let text = "pledge_date,patron_id,patron_username,patron_public_name,donation_currency,weekly_amount\n\
            2024-01-01,42,ann,Ann,EUR,1.00\n";
        let out = rows(Format::Liberapay, text);
        let (_, Ok(Parsed::Row(r))) = &out[0] else {
            panic!("{:?}", out[0])
        };
        let p = r.pledge.as_ref().unwrap();
        assert_eq!(
            (p.interval, p.amount_minor, p.from_weekly),
            (Interval::Month, 433, Some(100))
        );
        assert_eq!(r.movement, Movement::Pledge);
    }

    #[test]
    fn a_missing_column_refuses_the_file_by_name() {
        let mapping = Mapping::preset(Format::Csv, &[], None).unwrap();
        let Err(e) = Rows::new("date,amount\n".as_bytes(), Format::Csv, mapping, Utc::now()) else {
            panic!()
        };
        assert!(e.to_string().contains("external_id") || format!("{e:?}").contains("external_id"));
    }
}

//! Writes an Open Collective `transactions.csv` of N rows (the dashboard's
//! column labels), newest first as Open Collective exports it, for
//! measuring `patronage import` (benches/imports.sh). Deterministic: the
//! same N gives the same file. Per 10 rows: 6 monthly contributions from
//! N/20 contributors (so each pledge gets about 12 payments, a year's
//! worth), 2 one-time contributions from people seen once, 1 yearly
//! contribution, and 1 payment processor fee (skipped by the import).
//!
//!   cargo run --example import_fixture -- 100000 > /tmp/transactions.csv

use std::io::{BufWriter, Write};

use chrono::{Duration, TimeZone, Utc};

fn main() -> std::io::Result<()> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let contributors = (n / 20).max(1);
    let end = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
    let mut out = BufWriter::new(std::io::stdout().lock());
    writeln!(
        out,
        "\"Effective Date & Time\",\"Transaction ID\",\"Description\",\"Credit/Debit\",\"Kind\",\"Group ID\",\
         \"Amount Single Column\",\"Currency\",\"Is Reverse\",\"Is Reversed\",\"Reverse Transaction ID\",\
         \"Account Handle\",\"Account Name\",\"Opposite Account Handle\",\"Opposite Account Name\",\
         \"Opposite Account Email\",\"Payment Processor\",\"Payment Method\",\"Contribution Memo\""
    )?;
    for i in 0..n {
        // Newest first, spread over about two years.
        let at = end - Duration::minutes((i * 1_051_200 / n.max(1)) as i64);
        let at = at.format("%Y-%m-%dT%H:%M:%S");
        let id = 10_000_000 + n - i;
        let group = format!("g{}", i / 2);
        let (description, kind, credit, amount, who, email) = match i % 10 {
            0..=5 => {
                let c = (i * 7919) % contributors;
                let euros = 2 + c % 20;
                (
                    format!("Monthly contribution from Backer {c} (Bronze)"),
                    "CONTRIBUTION",
                    "CREDIT",
                    format!("{euros}.00"),
                    format!("backer-{c}"),
                    format!("backer{c}@example.org"),
                )
            }
            6 | 7 => (
                format!("Financial contribution from Guest {i}"),
                "CONTRIBUTION",
                "CREDIT",
                format!("{}.{:02}", 5 + i % 50, i % 100),
                format!("guest-{i}"),
                format!("guest{i}@example.org"),
            ),
            8 => {
                let c = (i * 104_729) % contributors;
                (
                    format!("Yearly contribution from Backer {c} (Gold)"),
                    "CONTRIBUTION",
                    "CREDIT",
                    "120.00".to_owned(),
                    format!("yearly-{c}"),
                    format!("yearly{c}@example.org"),
                )
            }
            _ => (
                "Transaction to Stripe".to_owned(),
                "PAYMENT_PROCESSOR_FEE",
                "DEBIT",
                "-0.59".to_owned(),
                "stripe".to_owned(),
                String::new(),
            ),
        };
        writeln!(
            out,
            "\"{at}\",{id},\"{description}\",\"{credit}\",\"{kind}\",\"{group}\",{amount},\"EUR\",\"\",\"\",\"\",\
             \"ourserver\",\"Our server\",\"{who}\",\"{who}\",\"{email}\",\"STRIPE\",\"CREDITCARD\","
        )?;
    }
    out.flush()
}

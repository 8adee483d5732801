//! The transparency report as a page (no scripts), CSV and Markdown ready
//! to post. Every figure comes from `service::transparency::Transparency`,
//! so the three always agree.

use serde::Serialize;

use super::PublicData;
use crate::{
    domain::{
        money::{Currency, Money, MoneyView},
        transparency::{Period, PublicPeriod},
    },
    error::{Error, Result},
    service::transparency::Transparency,
};

/// An amount taken away: "−€12", or "€0".
fn minus(m: &MoneyView) -> String {
    if m.amount_minor == 0 {
        m.display.clone()
    } else {
        format!("−{}", m.display)
    }
}

fn runway_text(tenths: Option<i64>) -> Option<String> {
    tenths.map(crate::domain::costs::tenths_display)
}

/// A change between two amounts, for people: "+€120 (+12%)".
fn change(now: &MoneyView, before: &MoneyView, currency: Currency) -> String {
    let diff = now.amount_minor - before.amount_minor;
    let sign = if diff > 0 { "+" } else { "" };
    let amount = Money::new(diff, currency).display();
    if before.amount_minor == 0 {
        return format!("{sign}{amount}");
    }
    let pct = i128::from(diff) * 100 / i128::from(before.amount_minor.abs());
    format!("{sign}{amount} ({sign}{pct}%)")
}

#[derive(Serialize)]
struct Bar {
    label: String,
    amount: String,
    /// Percent of the largest bar, 1 to 100.
    width: i64,
}

#[derive(Serialize)]
struct PeriodView<'a> {
    p: &'a PublicPeriod,
    runway: Option<String>,
    coverage: Option<i64>,
    bars: Vec<Bar>,
}

#[derive(Serialize)]
struct Compared {
    label: String,
    now: String,
    before: String,
    change: String,
}

fn bars(p: &PublicPeriod) -> Vec<Bar> {
    let max = p
        .costs
        .iter()
        .map(|c| c.amount.amount_minor)
        .max()
        .unwrap_or(0)
        .max(1);
    p.costs
        .iter()
        .map(|c| Bar {
            label: c.category.clone(),
            amount: c.amount.display.clone(),
            width: (c.amount.amount_minor.max(0) * 100 / max).max(1),
        })
        .collect()
}

/// The latest period against the one before: income, costs, result and
/// balance.
fn compared(t: &Transparency, currency: Currency) -> Vec<Compared> {
    let n = t.periods.len();
    if n < 2 {
        return Vec::new();
    }
    let (now, before) = (&t.periods[n - 1], &t.periods[n - 2]);
    let mut rows = vec![
        ("Received", &now.income_total, &before.income_total),
        ("Costs", &now.costs_total, &before.costs_total),
        ("Result", &now.result, &before.result),
    ];
    if let (Some(a), Some(b)) = (&now.balance, &before.balance) {
        rows.push(("Balance", a, b));
    }
    rows.into_iter()
        .map(|(label, a, b)| Compared {
            label: label.to_owned(),
            now: a.display.clone(),
            before: b.display.clone(),
            change: change(a, b, currency),
        })
        .collect()
}

fn currency_of(t: &Transparency) -> Result<Currency> {
    Currency::parse(&t.currency).ok_or_else(|| Error::internal("bad report currency"))
}

pub fn html(data: &PublicData, t: &Transparency) -> Result<String> {
    let currency = currency_of(t)?;
    let periods: Vec<PeriodView> = t
        .periods
        .iter()
        .rev()
        .map(|p| PeriodView {
            p,
            runway: runway_text(p.runway_tenths),
            coverage: p.coverage.as_ref().map(|c| c.percent),
            bars: bars(p),
        })
        .collect();
    let latest = t.latest();
    let ctx = minijinja::context! {
        name => &data.name,
        rel_me => &data.rel_me,
        site_url => &data.site_url,
        quarterly => t.period == Period::Quarter,
        periods => minijinja::Value::from(minijinja::value::Serde(&periods)),
        withheld_from => &t.withheld_from,
        target => t.runway_target_months,
        monthly_costs => &t.monthly_costs.display,
        coverage_now => t.coverage_now.as_ref().map(|c| c.percent),
        balance => latest.and_then(|p| p.balance.as_ref()).map(|b| b.display.clone()),
        balance_at => latest.map(|p| p.to.clone()),
        runway => latest.and_then(|p| runway_text(p.runway_tenths)),
        meets_target => latest.and_then(|p| p.runway_tenths).map(|r| r >= i64::from(t.runway_target_months) * 10),
        compared => minijinja::Value::from(minijinja::value::Serde(compared(t, currency))),
        latest_label => latest.map(|p| p.label.clone()),
        previous_label => t.periods.iter().rev().nth(1).map(|p| p.label.clone()),
    };
    Ok(super::page::render_template("pages/transparency.html", ctx))
}

/// One row per figure: `period, from, to, section, name, vendor, amount,
/// currency`.
/// Sections: income, refunds, fees, cost, costs_total, result, balance;
/// runway (months) and coverage (percent) carry their figure in `amount`.
pub fn csv(t: &Transparency) -> Result<String> {
    let currency = currency_of(t)?;
    let dec = |m: &MoneyView| Money::new(m.amount_minor, currency).decimal();
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::internal_from(e);
    w.write_record([
        "period", "from", "to", "section", "name", "vendor", "amount", "currency",
    ])
    .map_err(csv_err)?;
    for p in &t.periods {
        let mut line = |section: &str, name: &str, vendor: &str, amount: String| {
            w.write_record([
                p.label.as_str(),
                &p.from,
                &p.to,
                section,
                &crate::domain::spreadsheet_safe(name),
                &crate::domain::spreadsheet_safe(vendor),
                &amount,
                &t.currency,
            ])
        };
        for l in &p.income {
            line("income", &l.label, "", dec(&l.amount)).map_err(csv_err)?;
        }
        line("income_total", "", "", dec(&p.income_total)).map_err(csv_err)?;
        line("refunds", "", "", dec(&p.refunds)).map_err(csv_err)?;
        line("fees", "", "", dec(&p.fees)).map_err(csv_err)?;
        for c in &p.costs {
            line("cost", &c.category, "", dec(&c.amount)).map_err(csv_err)?;
            for v in &c.vendors {
                line("cost_vendor", &c.category, &v.vendor, dec(&v.amount)).map_err(csv_err)?;
            }
        }
        line("costs_total", "", "", dec(&p.costs_total)).map_err(csv_err)?;
        line("result", "", "", dec(&p.result)).map_err(csv_err)?;
        if let Some(b) = &p.balance {
            line("balance", "", "", dec(b)).map_err(csv_err)?;
        }
        if let Some(r) = runway_text(p.runway_tenths) {
            line("runway_months", "", "", r).map_err(csv_err)?;
        }
        if let Some(c) = &p.coverage {
            line("coverage_percent", "", "", c.percent.to_string()).map_err(csv_err)?;
        }
    }
    let bytes = w.into_inner().map_err(Error::internal_from)?;
    String::from_utf8(bytes).map_err(Error::internal_from)
}

/// Markdown escapes for text from the books: names cannot become links,
/// emphasis or HTML in the post.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if "\\`*_{}[]()<>#+-.!|~&".contains(ch) {
            out.push('\\');
        }
        if ch == '\n' || ch == '\r' {
            out.push(' ');
            continue;
        }
        out.push(ch);
    }
    out
}

/// The latest period as a post: its figures, costs by category as a text
/// chart, and the change against the period before.
pub fn markdown(data: &PublicData, t: &Transparency) -> Result<String> {
    let currency = currency_of(t)?;
    let mut out = String::new();
    let Some(p) = t.latest() else {
        out.push_str(&format!(
            "# {}: transparency report\n\nNo complete period to report yet.\n",
            md(&data.name)
        ));
        return Ok(out);
    };
    out.push_str(&format!(
        "# {}: transparency report, {}\n\n",
        md(&data.name),
        md(&p.label)
    ));
    out.push_str("## Income\n\n| | Amount |\n|---|---:|\n");
    for l in &p.income {
        out.push_str(&format!(
            "| {} | {} |\n",
            md(&l.label),
            md(&l.amount.display)
        ));
    }
    out.push_str(&format!(
        "| **Received** | **{}** |\n| Refunds and disputes | {} |\n| Payment fees | {} |\n\n",
        md(&p.income_total.display),
        md(&minus(&p.refunds)),
        md(&minus(&p.fees))
    ));
    out.push_str("## Costs\n\n| Category | Amount |\n|---|---:|\n");
    for c in &p.costs {
        out.push_str(&format!(
            "| {} | {} |\n",
            md(&c.category),
            md(&c.amount.display)
        ));
    }
    out.push_str(&format!(
        "| **Total costs** | **{}** |\n\n",
        md(&p.costs_total.display)
    ));
    if !p.costs.is_empty() {
        out.push_str("```\n");
        let width = p
            .costs
            .iter()
            .map(|c| c.category.chars().count())
            .max()
            .unwrap_or(0)
            .min(24);
        for b in bars(p) {
            let name: String = b
                .label
                .chars()
                .filter(|c| !c.is_control() && *c != '`')
                .take(24)
                .collect();
            out.push_str(&format!(
                "{name:<width$}  {} {}\n",
                "█".repeat(usize::try_from((b.width + 4) / 5).unwrap_or(1)),
                b.amount
            ));
        }
        out.push_str("```\n\n");
    }
    out.push_str(&format!("**Result:** {}\n\n", md(&p.result.display)));
    if let Some(b) = &p.balance {
        out.push_str(&format!(
            "**Balance at the end of {}:** {}\n\n",
            md(&p.to),
            md(&b.display)
        ));
    }
    if let Some(r) = runway_text(p.runway_tenths) {
        out.push_str(&format!(
            "**Runway:** {r} months at the last 3 months' costs (our target: {} months).\n\n",
            t.runway_target_months
        ));
    }
    if let Some(c) = &p.coverage {
        out.push_str(&format!(
            "**Coverage:** recurring income and sponsors paid {}% of the costs.\n\n",
            c.percent
        ));
    }
    let rows = compared(t, currency);
    if !rows.is_empty() {
        let before = &t.periods[t.periods.len() - 2].label;
        out.push_str(&format!(
            "## Against {}\n\n| | {} | {} | Change |\n|---|---:|---:|---:|\n",
            md(before),
            md(before),
            md(&p.label)
        ));
        for r in rows {
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                r.label,
                md(&r.before),
                md(&r.now),
                md(&r.change)
            ));
        }
        out.push('\n');
    }
    out.push_str(&format!("Every figure: {}/transparency\n", data.site_url));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::md;

    #[test]
    fn markdown_cannot_be_injected_by_a_name() {
        assert_eq!(md("[x](http://e)"), "\\[x\\]\\(http://e\\)");
        assert_eq!(md("<img src=x>"), "\\<img src=x\\>");
        assert_eq!(md("a\n# b"), "a \\# b");
    }
}

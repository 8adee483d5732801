//! The Import page: an owner uploads another platform's export, reads the
//! dry run line by line, and confirms (skipping bad rows only when they
//! tick the box). The upload is kept (a day at most) between the two, so
//! the confirmation reads the very file the dry run read. Same service as
//! `patronage import`.

use axum::{
    extract::{Multipart, State},
    http::HeaderMap,
    response::Response,
};
use serde::{Deserialize, Serialize};

use super::{OwnerForm, Signed, after, page};
use crate::{
    domain::{
        imports::{FIELDS, Format, Mapping},
        money::Currency,
    },
    error::{Error, Result},
    http::{AppState, extract::Path, origin},
    service::imports::{self, Mode, Plan, Summary},
    store,
};

/// The largest file the page takes; larger ones go through the CLI, which
/// streams from disk.
pub const MAX_UPLOAD: usize = 32 << 20;

#[derive(Serialize)]
struct FormatView {
    value: &'static str,
    label: &'static str,
}

#[derive(Serialize)]
struct ImportPage {
    formats: Vec<FormatView>,
    fields: &'static [&'static str],
    result: Option<Summary>,
    booked: Vec<String>,
    /// The token of the upload the confirm form commits.
    token: Option<String>,
    more_lines: u64,
    refused: bool,
}

fn view(result: Option<Summary>, token: Option<String>, refused: bool) -> ImportPage {
    let booked = result
        .as_ref()
        .map(|s| s.booked_display())
        .unwrap_or_default();
    let more_lines = result
        .as_ref()
        .map_or(0, |s| s.rows.saturating_sub(s.lines.len() as u64));
    ImportPage {
        formats: Format::ALL
            .iter()
            .map(|f| FormatView {
                value: f.as_str(),
                label: f.label(),
            })
            .collect(),
        fields: &FIELDS,
        result,
        booked,
        token,
        more_lines,
        refused,
    }
}

pub async fn show(signed: Signed) -> Result<Response> {
    signed.owner()?;
    page(&signed, "import.html", "import", view(None, None, false))
}

/// What an upload was read with, kept with it.
#[derive(Serialize, Deserialize)]
struct Stored {
    pairs: Vec<(String, String)>,
    currency: Option<String>,
}

fn plan(format: &str, stored: &Stored, file_name: &str) -> Result<Plan> {
    let format = Format::parse(format).ok_or_else(|| Error::field("format", "choose a format"))?;
    let currency = match stored.currency.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(c) => Some(
            Currency::parse(c)
                .ok_or_else(|| Error::field("currency", "must be an ISO 4217 currency code"))?,
        ),
    };
    Ok(Plan {
        format,
        mapping: Mapping::preset(format, &stored.pairs, currency)?,
        file_name: file_name.to_owned(),
    })
}

/// The upload (multipart: csrf, format, currency, map_<field>..., file):
/// kept, then read once as a dry run.
pub async fn upload(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<Response> {
    origin::same_site_form(&headers, &state.settings.pages.site_url)?;
    let (mut csrf, mut format, mut currency, mut pairs, mut file, mut file_name) = (
        String::new(),
        String::new(),
        None,
        Vec::new(),
        None,
        String::new(),
    );
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| Error::BadRequest(e.body_text()))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let read = |e: axum::extract::multipart::MultipartError| Error::BadRequest(e.body_text());
        match name.as_str() {
            "csrf" => csrf = field.text().await.map_err(read)?,
            "format" => format = field.text().await.map_err(read)?,
            "currency" => currency = Some(field.text().await.map_err(read)?),
            "file" => {
                file_name = field
                    .file_name()
                    .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n).to_owned())
                    .unwrap_or_default();
                file = Some(field.bytes().await.map_err(read)?);
            }
            other => {
                if let Some(f) = other.strip_prefix("map_") {
                    let header = field.text().await.map_err(read)?;
                    if !header.trim().is_empty() {
                        pairs.push((f.to_owned(), header));
                    }
                }
            }
        }
    }
    if !crate::auth::session::csrf_matches(&signed.csrf, &csrf) {
        return Err(Error::CrossSite);
    }
    let admin = signed.owner()?.clone();
    let outcome = async {
        let file = file
            .filter(|f| !f.is_empty())
            .ok_or_else(|| Error::field("file", "choose a CSV file"))?;
        let file_name: String = if file_name.trim().is_empty() {
            "upload.csv".to_owned()
        } else {
            file_name
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect()
        };
        let stored = Stored { pairs, currency };
        let plan = plan(&format, &stored, &file_name)?;
        let bytes = file.to_vec();
        let summary = imports::run(
            &state.db,
            &admin.actor(),
            &plan,
            || Ok(std::io::Cursor::new(&bytes[..])),
            Mode::DryRun,
            &mut |_| {},
        )
        .await?;
        let token = uuid::Uuid::new_v4().simple().to_string();
        store::imports::save_upload(
            &state.db,
            &store::imports::NewUpload {
                token: &token,
                admin_id: admin.id,
                file_name: &file_name,
                format: plan.format.as_str(),
                mapping: &serde_json::to_string(&stored).map_err(Error::internal_from)?,
                content: &bytes,
            },
        )
        .await?;
        Ok((summary, token))
    }
    .await;
    match outcome {
        Ok((summary, token)) => page(
            &signed,
            "import.html",
            "import",
            view(Some(summary), Some(token), false),
        ),
        Err(e) => after(signed.cookies, "/admin/import", Err(e)),
    }
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    skip_bad: Option<String>,
}

/// Commits a dry-run upload. With bad rows and the box not ticked, nothing
/// is written and the page says so.
pub async fn commit(
    State(state): State<AppState>,
    Path(token): Path<String>,
    OwnerForm { signed, form }: OwnerForm<ConfirmForm>,
) -> Result<Response> {
    let upload = store::imports::upload(&state.db, &token).await?;
    if upload.committed_at.is_some() {
        return after(
            signed.cookies,
            "/admin/import",
            Err(Error::conflict(
                "file",
                format!("{} is imported already", upload.file_name),
            )),
        );
    }
    let stored: Stored = serde_json::from_str(&upload.mapping).map_err(Error::internal_from)?;
    let plan = plan(&upload.format, &stored, &upload.file_name)?;
    let skip_bad = form.skip_bad.is_some();
    let summary = imports::import(
        &state,
        &signed.admin.actor(),
        &plan,
        || Ok(std::io::Cursor::new(&upload.content[..])),
        Mode::Commit { skip_bad },
        &mut |_| {},
    )
    .await?;
    if summary.committed {
        store::imports::mark_committed(&state.db, upload.id).await?;
        page(
            &signed,
            "import.html",
            "import",
            view(Some(summary), None, false),
        )
    } else {
        page(
            &signed,
            "import.html",
            "import",
            view(Some(summary), Some(upload.token), true),
        )
    }
}

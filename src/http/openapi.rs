//! The OpenAPI document served at `/api/openapi.json`. Handlers declare their
//! success answers and the errors peculiar to them; `add_problem_responses` adds
//! the errors every operation of a kind can give (a token refused, a body
//! that is not JSON, a rate limit, an overload), all as problem+json, so the
//! document states every status the API answers. `field` holds the schemas
//! of input fields, written to accept exactly what the domain's parsers do.

use utoipa::{
    OpenApi,
    openapi::{
        self, ContentBuilder, HeaderBuilder, Ref, RefOr, ResponseBuilder, Type,
        path::{HttpMethod, Operation},
        schema::{Object, ObjectBuilder, SchemaFormat},
    },
};

use crate::error::Problem;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "patronage",
        description = "Crowdfunding and sponsorship for community servers. Every error is an RFC 9457 \
            `application/problem+json` body (schema `Problem`) whose `type` ends in a stable code.",
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "public", description = "Funding totals for about pages and apps: no auth, CORS *, ETag"),
        (name = "admin", description = "Instance admins: owners change, viewers read"),
        (name = "ops", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The shared error answers: (status, component name, description).
const SHARED: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "malformed-request: the body is not valid JSON",
    ),
    (
        "401",
        "Unauthorized",
        "unauthorized: no valid bearer token (or the account is disabled)",
    ),
    (
        "403",
        "Forbidden",
        "forbidden: a viewer may read but not change",
    ),
    ("404", "NotFound", "not-found: no such resource"),
    (
        "408",
        "Timeout",
        "request-timeout: the request took longer than server.request_timeout_secs",
    ),
    (
        "409",
        "Conflict",
        "conflict: a unique key or a state rule refused the change",
    ),
    (
        "413",
        "PayloadTooLarge",
        "payload-too-large: the body is over server.body_limit_bytes",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "unsupported-media-type: send the body as application/json",
    ),
    (
        "422",
        "ValidationFailed",
        "validation-failed: `errors` lists each invalid field",
    ),
    (
        "429",
        "RateLimited",
        "rate-limited: try again after `Retry-After` seconds",
    ),
    (
        "500",
        "InternalError",
        "internal-error: the cause is logged, never sent",
    ),
    (
        "503",
        "ServiceUnavailable",
        "service-unavailable (overloaded, database unreachable) or payments-not-configured",
    ),
];

/// Adds the shared error answers to every operation, by what it takes, and
/// makes every error answer `application/problem+json`. Runs on the whole
/// document, once the routes have added their paths.
pub fn add_problem_responses(openapi: &mut openapi::OpenApi) {
    {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (status, name, description) in SHARED {
            let mut response = ResponseBuilder::new().description(*description).content(
                PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            );
            match *status {
                "401" => {
                    response = response.header(
                        "WWW-Authenticate",
                        HeaderBuilder::new()
                            .schema(Some(string().build()))
                            .description(Some("Bearer realm=\"patronage\""))
                            .build(),
                    )
                }
                "429" => {
                    response = response.header(
                        "Retry-After",
                        HeaderBuilder::new()
                            .schema(Some(
                                ObjectBuilder::new()
                                    .schema_type(Type::Integer)
                                    .minimum(Some(0))
                                    .build(),
                            ))
                            .description(Some("Seconds to wait"))
                            .build(),
                    )
                }
                _ => {}
            }
            components
                .responses
                .insert((*name).to_owned(), response.build().into());
        }

        // JSON bodies: the `Json` extractor refuses control characters but
        // tab and line breaks in every string of a request (answers are not
        // checked: an error may quote what was refused).
        let requests = request_schemas(&openapi.paths);
        for (name, schema) in components.schemas.iter_mut() {
            if !requests.contains(name) {
                continue;
            }
            let RefOr::T(openapi::schema::Schema::Object(object)) = schema else {
                continue;
            };
            for property in object.properties.values_mut() {
                if let RefOr::T(openapi::schema::Schema::Object(field)) = property {
                    no_controls(field, field::CONTROL_MULTILINE);
                }
            }
        }
        let shared = components.responses.clone();
        for (path, item) in openapi.paths.paths.iter_mut() {
            let methods = [
                (HttpMethod::Get, item.get.as_mut()),
                (HttpMethod::Put, item.put.as_mut()),
                (HttpMethod::Post, item.post.as_mut()),
                (HttpMethod::Delete, item.delete.as_mut()),
                (HttpMethod::Patch, item.patch.as_mut()),
            ];
            for (method, operation) in methods {
                if let Some(operation) = operation {
                    add_shared(path, &method, operation);
                    problem_json(operation);
                    no_controls_in_parameters(operation);
                    if is_page(operation) {
                        errors_as_pages_too(operation, &shared);
                    }
                }
            }
        }
    }
}

/// The names of the component schemas that request bodies refer to.
fn request_schemas(paths: &openapi::Paths) -> std::collections::BTreeSet<String> {
    let operations = paths.paths.values().flat_map(|item| {
        [&item.get, &item.put, &item.post, &item.delete, &item.patch]
            .into_iter()
            .flatten()
    });
    let mut names = std::collections::BTreeSet::new();
    for op in operations {
        let Some(RefOr::T(body)) = &op.request_body else {
            continue;
        };
        for content in body.content.values() {
            if let RefOr::T(content) = content
                && let Some(RefOr::Ref(r)) = &content.schema
                && let Some(name) = r.ref_location.rsplit('/').next()
            {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// An operation a browser opens or posts a form to (the management link).
fn is_page(op: &Operation) -> bool {
    let html = |r: &RefOr<openapi::Response>| matches!(r, RefOr::T(r) if r.content.contains_key("text/html"));
    op.responses.responses.get("200").is_some_and(html)
        || op.request_body.as_ref().is_some_and(|b| match b {
            RefOr::T(b) => b.content.contains_key("application/x-www-form-urlencoded"),
            RefOr::Ref(_) => false,
        })
}

/// A page answers what it can as a page for the person reading it; the
/// shared layers before it (rate limits, refused characters) still answer
/// problem+json. Its errors are documented as either.
fn errors_as_pages_too(
    op: &mut Operation,
    shared: &std::collections::BTreeMap<String, RefOr<openapi::Response>>,
) {
    for (status, response) in op.responses.responses.iter_mut() {
        if !(status.starts_with('4') || status.starts_with('5')) {
            continue;
        }
        if let RefOr::Ref(r) = response {
            let name = r.ref_location.rsplit('/').next().unwrap_or_default();
            if let Some(found) = shared.get(name) {
                *response = found.clone();
            }
        }
        if let RefOr::T(response) = response {
            let page = ContentBuilder::new().schema(Some(string().build())).build();
            response
                .content
                .entry("text/html".to_owned())
                .or_insert(RefOr::T(page));
            if !response.content.contains_key(PROBLEM_JSON) {
                let problem = ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build();
                response
                    .content
                    .insert(PROBLEM_JSON.to_owned(), RefOr::T(problem));
            }
        }
    }
}

/// Which shared errors an operation can give, from what it takes.
fn add_shared(path: &str, method: &HttpMethod, op: &mut Operation) {
    let api = path.starts_with("/api/");
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let path_params = path.contains('{');
    let json_body = op.request_body.as_ref().is_some_and(|b| match b {
        RefOr::T(b) => b.content.keys().any(|c| c == "application/json"),
        RefOr::Ref(_) => true,
    });
    let writes = !matches!(method, HttpMethod::Get);
    let mut wanted = vec!["408", "500"];
    if api {
        // Rate limits and overload (a full password-hashing queue, a
        // database without free connections) can answer any API call.
        wanted.extend(["429", "503"]);
    }
    if secured {
        wanted.push("401");
        // Every admin write needs an owner; viewers only read.
        if writes {
            wanted.extend(["403", "409"]);
        }
    }
    if has_params || op.request_body.is_some() {
        wanted.push("422");
    }
    if path_params {
        wanted.push("404");
    }
    if op.request_body.is_some() {
        wanted.push("413");
    }
    if json_body {
        wanted.extend(["400", "415"]);
    }
    for status in wanted {
        if op.responses.responses.contains_key(status) {
            continue;
        }
        let (_, name, _) = SHARED
            .iter()
            .find(|(s, _, _)| *s == status)
            .expect("shared");
        op.responses.responses.insert(
            status.to_owned(),
            RefOr::Ref(Ref::new(format!("#/components/responses/{name}"))),
        );
    }
}

/// Error answers written in a handler's `responses(...)` as `body = Problem`
/// come out as `application/json`; they are sent as problem+json.
fn problem_json(op: &mut Operation) {
    for (status, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if !(status.starts_with('4') || status.starts_with('5')) {
            continue;
        }
        if let Some(content) = response.content.shift_remove("application/json") {
            response.content.insert(PROBLEM_JSON.to_owned(), content);
        }
    }
}

/// No path segment or query value may hold a control character
/// (`http::controls`): said on every free-text parameter, so a generated
/// client knows it too.
fn no_controls_in_parameters(op: &mut Operation) {
    for parameter in op.parameters.iter_mut().flatten() {
        let RefOr::T(parameter) = parameter else {
            continue;
        };
        let Some(RefOr::T(openapi::schema::Schema::Object(schema))) = parameter.schema.as_mut()
        else {
            continue;
        };
        no_controls(schema, field::CONTROL);
    }
}

/// Gives a free-text string schema (no pattern or list of values of its
/// own) a pattern that refuses the `refused` characters.
fn no_controls(schema: &mut Object, refused: &str) {
    let text = match &schema.schema_type {
        openapi::schema::SchemaType::Type(t) => *t == Type::String,
        openapi::schema::SchemaType::Array(types) => types.contains(&Type::String),
        openapi::schema::SchemaType::AnyValue => false,
    };
    if text && schema.pattern.is_none() && schema.enum_values.is_none() {
        schema.pattern = Some(format!("^[^{refused}]*$"));
    }
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// Schemas of input fields, for `#[schema(schema_with = …)]`. Each says what
/// the domain parser behind the field accepts; `*_or_null` variants are for
/// optional fields, which also take `null`.
pub mod field {
    use super::*;
    use crate::domain::money::MAX_AMOUNT_MINOR;

    /// Characters `str::trim` removes (Unicode White_Space).
    /// Only those the `Json` extractor lets through: it refuses the other
    /// control characters (vertical tab, form feed, U+0085) anywhere.
    const SPACE: &str = r"\t\n\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
    /// Control characters (`char::is_control`).
    pub(super) const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";
    /// Control characters without tab, line feed and carriage return.
    pub(super) const CONTROL_MULTILINE: &str = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f";
    /// Longer bounds make patterns that some validators refuse to compile;
    /// above it the length is given as `maxLength` of the untrimmed text.
    const EXACT_UP_TO: usize = 1000;

    /// The pattern for `domain::text(_, _, min, max, multiline)`: trimmed,
    /// `min..=max` characters, no control characters inside.
    pub fn text_pattern(min: usize, max: usize, multiline: bool) -> String {
        let control = if multiline {
            CONTROL_MULTILINE
        } else {
            CONTROL
        };
        let edge = format!("[^{SPACE}{CONTROL}]");
        let inner = if max > EXACT_UP_TO {
            format!("[^{control}]*")
        } else {
            format!("[^{control}]{{0,{}}}", max.saturating_sub(2))
        };
        let core = if max == 1 {
            edge.clone()
        } else {
            format!("{edge}(?:{inner}{edge})?")
        };
        let core = if min == 0 {
            format!("(?:{core})?")
        } else {
            core
        };
        format!("^[{SPACE}]*{core}[{SPACE}]*$")
    }

    fn text(min: usize, max: usize, multiline: bool) -> ObjectBuilder {
        // The pattern bounds the trimmed text; `maxLength` what is sent.
        string()
            .pattern(Some(text_pattern(min, max, multiline)))
            .max_length(Some(max))
    }

    fn or_null(schema: ObjectBuilder) -> Object {
        let mut schema = schema.build();
        schema.schema_type = [schema_type_of(&schema), Type::Null].into_iter().collect();
        if let Some(values) = schema.enum_values.as_mut() {
            values.push(serde_json::Value::Null);
        }
        schema
    }

    fn schema_type_of(schema: &Object) -> Type {
        match &schema.schema_type {
            openapi::schema::SchemaType::Type(t) => t.clone(),
            _ => Type::String,
        }
    }

    fn amount_schema() -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(openapi::KnownFormat::Int64)))
            .minimum(Some(1))
            .maximum(Some(MAX_AMOUNT_MINOR))
            .description(Some("Minor units (cents), 1 to 10^12"))
    }

    fn email_schema() -> ObjectBuilder {
        string()
            .format(Some(SchemaFormat::KnownFormat(openapi::KnownFormat::Email)))
            .max_length(Some(254))
    }

    fn url_schema() -> ObjectBuilder {
        string()
            .format(Some(SchemaFormat::Custom("uri".into())))
            .pattern(Some(r"^https?://[^\s/?#@]+\.[^\s/?#@]+(?:[/?#]\S*)?$"))
            .max_length(Some(2048))
    }

    fn currency_schema() -> ObjectBuilder {
        // Every code `Currency::parse` takes (it also takes lower case).
        let letters = || b'A'..=b'Z';
        let codes: Vec<&str> = letters()
            .flat_map(|a| letters().flat_map(move |b| letters().map(move |c| [a, b, c])))
            .filter_map(|code| {
                crate::domain::money::Currency::parse(std::str::from_utf8(&code).ok()?)
            })
            .map(|c| c.code())
            .collect();
        string()
            .enum_values(Some(codes))
            .description(Some("ISO 4217 code"))
    }

    pub fn amount() -> Object {
        amount_schema().build()
    }
    pub fn amount_or_null() -> Object {
        or_null(amount_schema())
    }
    pub fn email() -> Object {
        email_schema().build()
    }
    pub fn website_url() -> Object {
        url_schema().build()
    }
    pub fn website_url_or_null() -> Object {
        or_null(url_schema())
    }
    pub fn currency_or_null() -> Object {
        or_null(currency_schema())
    }
    /// `auth::password::check_strength`.
    pub fn new_password() -> Object {
        string()
            .min_length(Some(crate::auth::password::MIN_LENGTH))
            .max_length(Some(crate::auth::password::MAX_LENGTH))
            .build()
    }
    /// `domain::supporter::parse_locale`.
    pub fn locale_or_null() -> Object {
        or_null(string().pattern(Some(format!(
            "^[{SPACE}]*[A-Za-z]{{2,3}}(?:[-_](?:[A-Za-z]{{2}}|[0-9]{{3}}))?[{SPACE}]*$"
        ))))
    }
    /// `domain::month::Month::parse`: YYYY-MM, years 2000 to 9998.
    pub fn month() -> Object {
        string()
            .pattern(Some(
                "^(?:[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-(?:0[1-9]|1[0-2])$",
            ))
            .build()
    }

    /// `domain::month::Month::parse`, or null.
    pub fn month_or_null() -> Object {
        let mut schema = month();
        schema.schema_type = [Type::String, Type::Null].into_iter().collect();
        schema
    }
    /// `domain::costs::category`: 1 to 60 characters.
    pub fn cost_category() -> Object {
        text(1, crate::domain::costs::CATEGORY_MAX, false).build()
    }
    /// An amount that may be zero or negative (a balance).
    pub fn signed_amount() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(openapi::KnownFormat::Int64)))
            .minimum(Some(-MAX_AMOUNT_MINOR))
            .maximum(Some(MAX_AMOUNT_MINOR))
            .description(Some("Minor units (cents), -10^12 to 10^12"))
            .build()
    }

    /// Names of people and companies: 1 to 100 characters.
    pub fn name() -> Object {
        text(1, 100, false).build()
    }
    pub fn name_or_null() -> Object {
        or_null(text(1, 100, false))
    }
    pub fn campaign_name_or_null() -> Object {
        or_null(text(1, 120, false))
    }
    pub fn campaign_description_or_null() -> Object {
        or_null(text(0, 10_000, true))
    }
    pub fn tier_name() -> Object {
        text(1, 80, false).build()
    }
    pub fn tier_name_or_null() -> Object {
        or_null(text(1, 80, false))
    }
    pub fn tier_description() -> Object {
        text(0, 4000, true).build()
    }
    pub fn tier_description_or_null() -> Object {
        or_null(text(0, 4000, true))
    }
    /// Notes and reasons: up to 1000 characters, line breaks allowed.
    pub fn note() -> Object {
        text(0, 1000, true).build()
    }
    pub fn required_note() -> Object {
        text(1, 1000, true)
            .examples(["Not what this instance is about"])
            .build()
    }
    pub fn reference_or_null() -> Object {
        or_null(text(1, 200, false))
    }
    pub fn logo_ref_or_null() -> Object {
        or_null(text(1, 500, false))
    }
    pub fn alt_text() -> Object {
        text(1, 200, false).build()
    }
    pub fn slots_or_null() -> Object {
        or_null(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(openapi::KnownFormat::Int64)))
                .minimum(Some(1))
                .maximum(Some(1_000_000)),
        )
    }
    fn rank_schema() -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(openapi::KnownFormat::Int64)))
            .minimum(Some(-1_000_000))
            .maximum(Some(1_000_000))
            .description(Some("Lower ranks are shown first"))
    }
    pub fn rank() -> Object {
        rank_schema().build()
    }
    pub fn rank_or_null() -> Object {
        or_null(rank_schema())
    }
}

#[cfg(test)]
mod tests {
    use super::field::text_pattern;
    use crate::domain::text;

    /// The documented pattern and `domain::text` agree, so a generated
    /// client neither sends what the server refuses nor refuses what it takes.
    #[test]
    fn text_patterns_accept_what_text_accepts() {
        let samples = [
            "",
            " ",
            "a",
            " a ",
            "ab",
            "\ta\n",
            "a\nb",
            "a\tb",
            "a\u{0}b",
            "\u{0}",
            "a\u{7f}",
            "a\u{85}",
            "\u{85}a\u{85}",
            "\u{a0}",
            "a\u{200b}",
            "\u{feff}",
            "\u{202e}evil",
            "a\u{2028}b",
            "é",
            "名前",
            "🙂",
            "a\rb",
            " \u{3000}x\u{3000} ",
            "\u{1b}[31m",
            "abc",
            "abcd",
            " abcd ",
            "abcde",
        ];
        for (min, max, multiline) in [
            (1, 4, false),
            (0, 4, true),
            (1, 4, true),
            (0, 1, false),
            (1, 1, false),
        ] {
            let pattern = regex::Regex::new(&text_pattern(min, max, multiline)).unwrap();
            for s in samples {
                // What the API takes: the `Json` extractor's character
                // check, then the domain's `text`.
                let accepted = !s.chars().any(crate::domain::is_refused_control)
                    && text("f", s, min, max, multiline).is_ok();
                assert_eq!(
                    pattern.is_match(s) && s.chars().count() <= max,
                    accepted,
                    "{s:?} with min {min}, max {max}, multiline {multiline}"
                );
            }
        }
    }
}

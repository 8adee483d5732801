//! The `patronage` command.

use std::{
    io::{BufRead, IsTerminal},
    path::PathBuf,
    process::ExitCode,
};

use clap::{Parser, Subcommand};
use patronage::{
    app::{self, Application},
    auth::{Role, password},
    config::Settings,
    domain::{imports::Format, money::Currency, supporter::Email},
    error::{Error, Result},
    seed, store, telemetry,
};

#[derive(Parser)]
#[command(
    name = "patronage",
    version,
    about = "Crowdfunding and sponsorship for community servers"
)]
struct Cli {
    /// A TOML file layered over config/default.toml (env vars still win).
    #[arg(long, global = true, env = "PATRONAGE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (migrates the database first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage admin accounts.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Fill an empty database with benchmark data.
    Seed {
        #[arg(long, default_value_t = 100_000)]
        patrons: usize,
        #[arg(long, default_value_t = 1_000)]
        sponsors: usize,
        #[arg(long, default_value_t = 1_000_000)]
        ledger_entries: usize,
        /// Expenses over the past two years, in 12 categories.
        #[arg(long, default_value_t = 2_000)]
        expenses: usize,
    },
    /// Import payments, patrons and pledges from another platform's CSV
    /// export. A dry run unless --commit: every line says what it would
    /// create, update or skip. Nothing is ever charged or sent to Stripe.
    Import {
        /// The CSV file, read row by row.
        file: PathBuf,
        /// opencollective, csv (generic, with --map), patreon, liberapay,
        /// kofi or github_sponsors.
        #[arg(long, value_parser = parse_format)]
        format: Format,
        /// The column of a field, as FIELD=HEADER (repeatable). Fields:
        /// date, name, email, handle, amount, currency, interval, tier,
        /// external_id, status, paid_through, pledge_amount, pledge_key.
        #[arg(long = "map", value_parser = parse_mapping)]
        map: Vec<(String, String)>,
        /// The currency of a file without a currency column.
        #[arg(long)]
        currency: Option<String>,
        /// Only say what would happen (the default).
        #[arg(long, conflicts_with = "commit")]
        dry_run: bool,
        /// Write the rows, in batches of 500.
        #[arg(long)]
        commit: bool,
        /// With --commit: write the good rows even though some are bad.
        #[arg(long, requires = "commit")]
        skip_bad: bool,
        /// Print the summary only, not every line.
        #[arg(long)]
        quiet: bool,
    },
    /// Linked fediverse accounts.
    Fediverse {
        #[command(subcommand)]
        command: FediverseCommand,
    },
}

#[derive(Subcommand)]
enum FediverseCommand {
    /// Print the `tootctl accounts modify` lines for linked patrons whose
    /// status changed (looking now as the daily job does), and mark them
    /// reported. Remote accounts get no line: roles exist only for local
    /// accounts (they are listed on stderr).
    RoleSync {
        /// Print without marking them reported (they show again).
        #[arg(long)]
        keep: bool,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an admin. The password is read from a prompt, or from the
    /// first line of standard input when it is not a terminal.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration, secrets redacted.
    Check,
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::parse(s).ok_or_else(|| {
        let all: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
        format!("must be one of {}", all.join(", "))
    })
}

fn parse_mapping(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(f, h)| (f.trim().to_owned(), h.trim().to_owned()))
        .ok_or_else(|| "must be FIELD=HEADER, like amount=\"Gross Amount\"".to_owned())
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| "must be owner or viewer".to_owned())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("patronage: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_tracing(&settings.log);
    match run(cli.command, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("patronage: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> Result<()> {
    match command {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            app::open_database(&settings).await?;
            eprintln!("migrations applied to {}", redacted_url(&settings));
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::Create { email, role },
        } => create_admin(settings, &email, role).await,
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            print!("{}", settings.to_redacted_toml());
            for warning in settings.warnings() {
                eprintln!("warning: {warning}");
            }
            Ok(())
        }
        Command::Import {
            file,
            format,
            map,
            currency,
            dry_run: _,
            commit,
            skip_bad,
            quiet,
        } => {
            import(
                settings, file, format, map, currency, commit, skip_bad, quiet,
            )
            .await
        }
        Command::Fediverse {
            command: FediverseCommand::RoleSync { keep },
        } => {
            let db = app::open_database(&settings).await?;
            store::fediverse::detect_role_changes(&db).await?;
            let report = patronage::service::fediverse::role_sync_report(&db, &settings).await?;
            for c in &report.changes {
                match (&c.line, &c.note) {
                    (Some(line), _) => println!("{line}"),
                    (None, Some(note)) => eprintln!("# {} ({}): {note}", c.acct, c.change),
                    (None, None) => {}
                }
            }
            if let (Some(up_to), false) = (report.up_to, keep) {
                store::fediverse::mark_reported(&db, up_to, "command line").await?;
            }
            if report.changes.is_empty() {
                eprintln!("# no changes since the last report");
            }
            Ok(())
        }
        Command::Seed {
            patrons,
            sponsors,
            ledger_entries,
            expenses,
        } => {
            let db = app::open_database(&settings).await?;
            let started = std::time::Instant::now();
            seed::seed(
                &db,
                seed::SeedPlan {
                    patrons,
                    sponsors,
                    ledger_entries,
                    expenses,
                },
            )
            .await?;
            let size = seed::database_size(&db).await?;
            println!(
                "seeded {patrons} patrons, {sponsors} sponsors, {ledger_entries} ledger entries, {expenses} expenses in {:.1} s; database size {:.1} MiB",
                started.elapsed().as_secs_f64(),
                size as f64 / 1024.0 / 1024.0
            );
            Ok(())
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn import(
    settings: Settings,
    file: PathBuf,
    format: Format,
    map: Vec<(String, String)>,
    currency: Option<String>,
    commit: bool,
    skip_bad: bool,
    quiet: bool,
) -> Result<()> {
    use patronage::service::imports::{self, Mode, Plan};
    let currency =
        match currency {
            Some(c) => Some(Currency::parse(&c).ok_or_else(|| {
                Error::Config(format!("--currency {c:?} is not an ISO 4217 code"))
            })?),
            None => None,
        };
    let mapping =
        patronage::domain::imports::Mapping::preset(format, &map, currency).map_err(readable)?;
    let plan = Plan {
        format,
        mapping,
        file_name: file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let db = app::open_database(&settings).await?;
    let open = || {
        std::fs::File::open(&file)
            .map(|f| std::io::BufReader::with_capacity(64 * 1024, f))
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", file.display())))
    };
    let mode = if commit {
        Mode::Commit { skip_bad }
    } else {
        Mode::DryRun
    };
    let started = std::time::Instant::now();
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut print = move |l: &imports::Line| {
        if !quiet || l.action == "bad" {
            use std::io::Write;
            let _ = writeln!(out, "line {}: {}: {}", l.line, l.action, l.detail);
        }
    };
    let summary = imports::run(
        &db,
        &store::audit::Actor::cli(),
        &plan,
        open,
        mode,
        &mut print,
    )
    .await
    .map_err(readable)?;
    drop(print);
    let booked = summary.booked_display().join(", ");
    println!(
        "{} {} rows of {} ({}) in {:.1} s: {} create, {} update, {} skip, {} bad; \
         {} payments, {} new pledges, {} updated pledges, {} new supporters; money {}",
        match (summary.committed, commit) {
            (true, _) => "imported",
            (false, true) => "refused:",
            (false, false) => "dry run:",
        },
        summary.rows,
        plan.file_name,
        format.as_str(),
        started.elapsed().as_secs_f64(),
        summary.created,
        summary.updated,
        summary.skipped,
        summary.bad,
        summary.entries_created,
        summary.pledges_created,
        summary.pledges_updated,
        summary.supporters_created,
        if booked.is_empty() {
            "none".to_owned()
        } else {
            booked
        },
    );
    if summary.committed {
        return Ok(());
    }
    if commit {
        return Err(Error::conflict(
            "file",
            format!(
                "{} bad rows: nothing was written; fix them, or add --skip-bad to import the others",
                summary.bad
            ),
        ));
    }
    println!(
        "nothing was written; run again with --commit{} to import",
        if summary.bad > 0 { " --skip-bad" } else { "" }
    );
    Ok(())
}

/// A validation error with its messages, for a terminal.
fn readable(e: Error) -> Error {
    match e {
        Error::Validation(fields) => Error::Config(
            fields
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        e => e,
    }
}

async fn serve(settings: Settings) -> Result<()> {
    let app = Application::build(settings.clone()).await?;
    let addr = app.local_addr();
    tracing::info!(%addr, database = %redacted_url(&settings), "patronage is listening");
    if let Some(token) = &app.setup_token {
        // Printed, never logged: it grants the first owner account.
        eprintln!(
            "\n  No owner account exists yet. Open this one-time link (valid {} hours) to create it:\n\n    \
             http://{addr}/admin/setup?token={token}\n\n  \
             or create it from the command line:\n\n    \
             cargo run --release -- admin create --email you@example.org --role owner\n",
            settings.auth.setup_token_ttl_hours
        );
    }
    app.run_until_stopped().await
}

async fn create_admin(settings: Settings, email: &str, role: Role) -> Result<()> {
    let email = Email::parse("email", email)
        .map_err(|e| Error::Config(format!("--email {}", e.message)))?;
    let password = read_password()?;
    password::check_strength(&password)
        .map_err(|e| Error::Config(format!("password {}", e.message)))?;
    let db = app::open_database(&settings).await?;
    let hash = password::hash(&password)?;
    let admin = store::admins::create(
        &db,
        &store::audit::Actor::cli(),
        &email,
        &hash,
        role,
        store::admins::Grant::Direct,
    )
    .await?;
    println!("created {} {} (id {})", role, admin.email, admin.id);
    Ok(())
}

fn read_password() -> Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password (at least 12 characters): ")
            .map_err(Error::internal_from)?;
        let again =
            rpassword::prompt_password("Repeat the password: ").map_err(Error::internal_from)?;
        if first != again {
            return Err(Error::Config("the passwords differ".into()));
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(Error::internal_from)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

fn redacted_url(settings: &Settings) -> String {
    patronage::config::redact_url(&settings.database_url())
}

//! `otpfleet serve`: the reference OTP server on a socket.

use anyhow::{Context as _, bail};
use clap::Args;
use otpfleet_server::http::new_admin_token;
use otpfleet_server::{Catalogue, ServerConfig, Storage, TokioClock};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct ServeOpts {
    /// Address to listen on, HOST:PORT with an address or a host name (localhost:0); port 0
    /// picks a free port (the first line of stdout names it).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
    pub listen: String,
    /// PEM file of the server's certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM file of the certificate's private key (with --tls-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// File holding the admin token. Without it a new token is made and written to a file
    /// only you can read, and its path is printed.
    #[arg(long, value_name = "PATH")]
    pub admin_token_file: Option<PathBuf>,
    /// Certified catalogue: a JSON array of {"make", "model", "certified"}. Default: the one
    /// shipped with the server.
    #[arg(long, value_name = "FILE")]
    pub catalogue: Option<PathBuf>,
    /// Polling interval told to consoles, in seconds (1 to 60).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=60))]
    pub poll_interval_s: u32,
    /// How long a batch export can be downloaded, in minutes (1 to 10080); then it is purged.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=10_080))]
    pub export_window_min: u64,
    /// Largest request body accepted, in bytes (1 KiB to 64 MiB).
    #[arg(long, default_value_t = 8 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1024..=64 * 1024 * 1024))]
    pub max_body_bytes: u64,
    /// Directory of the server's durable state (created if missing). Every acknowledged change
    /// is journaled there before it is answered, and a restart recovers it.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "otpfleet-data",
        conflicts_with = "in_memory"
    )]
    pub data_dir: PathBuf,
    /// Keep state in memory only (lost when the server stops): for benchmarks.
    #[arg(long)]
    pub in_memory: bool,
    /// Keep the state in this PostgreSQL database (15 or later) instead of --data-dir, shared
    /// by every replica serving it: postgres://USER:PASSWORD@HOST:PORT/DBNAME. Errors name it
    /// without its password. Needs --admin-token-file (every replica accepts the same token).
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "URL",
        hide_env_values = true,
        conflicts_with = "in_memory",
        requires = "admin_token_file"
    )]
    pub database_url: Option<String>,
    /// With --database-url: apply the schema migrations the database lacks before serving (as
    /// `otpfleet db migrate` does; replicas starting together take turns).
    #[arg(long, requires = "database_url")]
    pub migrate: bool,
    /// With --database-url: the most connections this replica opens to the database (1 to
    /// 1000), besides one it listens on.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub db_connections: u32,
    /// Threads answering requests (tokio's workers). Default: one per core.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,
    /// Longest a request may take, in seconds (1 to 600).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub request_timeout_s: u64,
    /// Most connections open at once; past it a new one is answered 503 and closed (keep it
    /// under the process's file-descriptor limit, `ulimit -n`).
    #[arg(long, default_value_t = 8_192, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
    /// Most connections open at once from one client address (a fleet with
    /// --connection-per-console opens one per console in flight).
    #[arg(long, default_value_t = 1_024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections_per_address: u64,
    /// A connection that sends nothing for this long, in seconds, is closed (1 to 3600).
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub idle_timeout_s: u64,
    /// A reverse proxy's network (CIDR, e.g. 10.0.0.0/8) whose X-Forwarded-For is believed:
    /// throttling then counts the client behind it, not the proxy (repeatable; off by default,
    /// since anyone can write that header).
    #[arg(long, value_name = "CIDR")]
    pub trust_forwarded_for: Vec<ipnet::IpNet>,
}

impl ServeOpts {
    fn config(&self) -> ServerConfig {
        ServerConfig {
            poll_interval_s: self.poll_interval_s,
            export_window_ms: self.export_window_min * 60_000,
            max_body_bytes: usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX),
            request_timeout: Duration::from_secs(self.request_timeout_s),
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            max_connections_per_address: usize::try_from(self.max_connections_per_address)
                .unwrap_or(usize::MAX),
            idle_timeout: Duration::from_secs(self.idle_timeout_s),
            write_timeout: Duration::from_secs(self.request_timeout_s),
            trusted_proxies: self.trust_forwarded_for.clone(),
            ..ServerConfig::default()
        }
    }
}

/// The catalogue of `--catalogue`, or the built-in one.
fn catalogue(path: Option<&Path>) -> anyhow::Result<Catalogue> {
    let Some(path) = path else {
        return Ok(Catalogue::builtin());
    };
    let text = otpfleet_reports::read_text(path, 16 * 1024 * 1024)
        .with_context(|| format!("while reading the catalogue {}", path.display()))?;
    Catalogue::from_json(&text)
        .with_context(|| format!("while loading the catalogue {}", path.display()))
}

/// On stderr: what a durable server recovered from its data directory, and how fast.
fn say_recovered(
    storage: &Storage,
    server: &otpfleet_server::Assembled,
    started: std::time::Instant,
) {
    if let Storage::Durable(dir) = &storage {
        eprintln!(
            "data directory {}: recovered {} events in {} ms; {} admin token(s) stored",
            dir.display(),
            server.replayed,
            started.elapsed().as_millis(),
            server.stored_tokens
        );
    }
}

/// The TLS settings of `--tls-cert` and `--tls-key`, if given.
fn tls(opts: &ServeOpts) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    let (Some(cert), Some(key)) = (&opts.tls_cert, &opts.tls_key) else {
        return Ok(None);
    };
    let config = otpfleet_server::tls_server_config(cert, key)
        .map_err(|e| otpfleet_run::BadInput(format!("--tls-cert/--tls-key: {e}")))?;
    Ok(Some(config))
}

pub fn run(opts: ServeOpts) -> anyhow::Result<()> {
    let catalogue = catalogue(opts.catalogue.as_deref())?;
    let tls = tls(&opts)?;
    let given = opts
        .admin_token_file
        .as_deref()
        .map(server_token)
        .transpose()?;
    let mut generated_file = None;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = opts.workers {
        runtime.worker_threads(usize::from(n));
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("while starting the async runtime")?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(opts.listen.as_str())
            .await
            .with_context(|| format!("while binding {} (--listen)", opts.listen))?;
        let addr = listener.local_addr()?;
        // The wall clock is read once, here at the edge; from now on time follows tokio.
        let clock: Arc<dyn otpfleet_server::Clock> =
            Arc::new(TokioClock::new(otpfleet_run::wall_clock_ms()));
        let given: Vec<(&str, &str)> = given.iter().map(|t| (t.as_str(), "token-file")).collect();
        let mut app = match &opts.database_url {
            Some(url) => on_postgres(&opts, url, catalogue, clock, &given).await?,
            None => on_its_own(&opts, catalogue, clock, &given)?,
        };
        if app.admin_tokens.is_empty() {
            let (token, path) = generate_token_file()?;
            app.admin_tokens.add(&token, "run-token");
            generated_file = Some(path);
        }
        let app = Arc::new(app);
        // Signal handlers go in before the port is announced: a SIGTERM sent right after the
        // first line must stop the server cleanly, not kill it.
        let shutdown = shutdown_signal()?;
        let mut stdout = std::io::stdout().lock();
        let scheme = if tls.is_some() { "https" } else { "http" };
        writeln!(stdout, "listening on {scheme}://{addr}")?;
        stdout.flush()?;
        drop(stdout);
        match tls {
            Some(tls) => otpfleet_server::serve_tls(listener, app, tls, shutdown).await?,
            None => otpfleet_server::serve(listener, app, shutdown).await?,
        }
        eprintln!("stopped");
        Ok(())
    });
    // A token made for this run dies with it.
    if let Some(path) = generated_file {
        let _ = std::fs::remove_file(path);
    }
    served
}

/// A server on its own: its data directory, or memory (`--in-memory`), accepting the admin
/// tokens stored there and `given`.
fn on_its_own(
    opts: &ServeOpts,
    catalogue: Catalogue,
    clock: Arc<dyn otpfleet_server::Clock>,
    given: &[(&str, &str)],
) -> anyhow::Result<otpfleet_server::App> {
    let storage = match opts.in_memory {
        true => Storage::InMemory,
        false => Storage::Durable(opts.data_dir.clone()),
    };
    let started = std::time::Instant::now();
    let server = otpfleet_server::assemble(opts.config(), catalogue, &storage, clock, given)
        .with_context(|| {
            format!(
                "while opening the data directory {}",
                opts.data_dir.display()
            )
        })?;
    say_recovered(&storage, &server, started);
    Ok(server.app)
}

/// A replica on the PostgreSQL store at `url` (migrated first with `--migrate`), accepting the
/// admin tokens `given`.
async fn on_postgres(
    opts: &ServeOpts,
    url: &str,
    catalogue: Catalogue,
    clock: Arc<dyn otpfleet_server::Clock>,
    given: &[(&str, &str)],
) -> anyhow::Result<otpfleet_server::App> {
    use otpfleet_server::pg::{PgCore, PgStore};
    let store = PgStore::connect(url, opts.db_connections as usize).await?;
    if opts.migrate {
        let m = store.migrate().await?;
        if m.from != m.to {
            eprintln!(
                "database {}: schema migrated from version {} to {}",
                store.target(),
                m.from,
                m.to
            );
        }
    }
    let target = store.target().to_owned();
    let pg = PgCore::open(store, opts.config(), catalogue).await?;
    eprintln!("state in the PostgreSQL database {target}, shared with every replica on it");
    let mut tokens = otpfleet_server::http::AdminTokens::default();
    for (token, name) in given {
        tokens.add(token, name);
    }
    Ok(otpfleet_server::App::over_postgres(pg, clock, tokens))
}

/// The one token of the server's --admin-token-file: no spaces, at most 512 bytes.
fn server_token(path: &Path) -> anyhow::Result<String> {
    let token = otpfleet_run::target::read_token_file(path)?;
    if token.chars().any(char::is_whitespace) || token.len() > 512 {
        bail!(
            "the admin token file {} must hold one token (no spaces, at most 512 bytes)",
            path.display()
        );
    }
    warn_if_readable_by_others(path);
    Ok(token)
}

/// A token for this run only, written to a fresh private file (whose path is answered too, so
/// it can be removed when the server stops).
fn generate_token_file() -> anyhow::Result<(String, PathBuf)> {
    let token = new_admin_token();
    let path = std::env::temp_dir().join(format!("otpfleet-admin-token-{}", std::process::id()));
    write_private(&path, &token)
        .with_context(|| format!("while writing the admin token to {}", path.display()))?;
    eprintln!(
        "admin token for this run written to {} (readable by you only); use it as \
         Authorization: Bearer <token>. For a lasting one: otpfleet admin-token add",
        path.display()
    );
    Ok((token, path))
}

#[cfg(unix)]
fn write_private(path: &Path, token: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{token}")
}

#[cfg(not(unix))]
fn write_private(path: &Path, token: &str) -> std::io::Result<()> {
    std::fs::write(path, format!("{token}\n"))
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                eprintln!(
                    "warning: the admin token file {} can be read by other users; chmod 600 it",
                    path.display()
                );
            }
        }
    }
}

/// A future that resolves on Ctrl-C or SIGTERM; the handlers are installed when this returns.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Ok(async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async {
            term.recv().await;
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {}
            () = term => {}
        }
    })
}

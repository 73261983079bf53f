//! `pylon`: compiles API definitions into an Envoy configuration. Only the
//! command line lives here; the work is the `pylon` library's (`commands`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pylon::commands::{audit_compile, compile, keygen, new_app, validate, OutputTarget};
use pylon::error::{self, DefError};
use pylon::{audit, call, openapi, publish};

#[derive(Parser)]
#[command(name = "pylon", version, about = "Pylon API gateway compiler")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How definition errors are printed (on stderr): `text` lines
    /// `error: file:line:column: object.field: message`, or one `json`
    /// document `{"errors": [{file, line, column, object, field, message}]}`;
    /// for `export`, the document's format: huawei, aliyun or openapi.
    #[arg(long, global = true, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
    /// `export`: Swagger 2.0 with Huawei APIG extensions (errors print as text).
    Huawei,
    /// `export`: Swagger 2.0 with Alibaba API Gateway extensions.
    Aliyun,
    /// `export`: plain OpenAPI 3.0.
    Openapi,
}

#[derive(Subcommand)]
enum Command {
    /// Check definitions and write envoy.yaml, pylon.json and the filter to DIR.
    Compile {
        /// Definition files or directories (every *.yaml / *.yml in them).
        #[arg(required = true)]
        defs: Vec<PathBuf>,
        /// Output directory (created if missing).
        #[arg(long, short)]
        out: PathBuf,
        /// The filter module; defaults to $PYLON_WASM, then the build next to this binary.
        #[arg(long)]
        wasm: Option<PathBuf>,
        /// Listener address, overriding `gateway.listen` (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
        /// Admin address, overriding `gateway.admin` (default 127.0.0.1:9901).
        #[arg(long)]
        admin: Option<String>,
        /// File holding the key that seals app and account secrets in the
        /// output (base64 of 32 bytes, see `pylon keygen`); default: $PYLON_SEAL_KEY.
        #[arg(long, value_name = "FILE")]
        seal_key_file: Option<PathBuf>,
        /// `static`: one envoy.yaml holding everything (restart to change);
        /// `xds`: a bootstrap that reads listeners, routes, clusters and the
        /// filter's configuration from files in DIR, replaced live;
        /// `istio`: DIR/istio.yaml, the resources for an Istio ingress gateway.
        #[arg(long, value_enum, default_value = "static")]
        target: OutputTarget,
        /// With `--target istio`: where the gateway fetches the filter
        /// (`oci://…`, `https://…`, `file://…`); default: file:// of DIR's copy.
        #[arg(long, value_name = "URL")]
        wasm_url: Option<String>,
        /// Why this compile, recorded in the audit trail (`pylon audit`).
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Publish APIs to an environment: record them in the release store
    /// (DEFS/.pylon/releases) and update the live files.
    Publish {
        /// Definition files or directories; the release store is
        /// `.pylon/releases` in (or next to) the first.
        #[arg(required = true)]
        defs: Vec<PathBuf>,
        /// The environment to publish to.
        #[arg(long)]
        env: String,
        /// An API to publish, `NAME` or `GROUP/NAME` (repeatable); default:
        /// every API whose `publish:` lists the environment.
        #[arg(long = "api")]
        apis: Vec<String>,
        /// What this publication is, recorded with it (shown by `history`).
        #[arg(long)]
        note: String,
        #[command(flatten)]
        live: publish::LiveArgs,
    },
    /// Make a kept version of one API current again in one environment.
    Rollback {
        api: String,
        #[arg(long)]
        env: String,
        #[arg(long = "to", value_name = "VERSION")]
        to: u64,
        /// Why, recorded in the audit trail (`pylon audit`).
        #[arg(long, default_value = "")]
        note: String,
        /// The definitions (whose `.pylon/releases` is the store).
        #[arg(long, default_value = ".")]
        defs: Vec<PathBuf>,
        #[command(flatten)]
        live: publish::LiveArgs,
    },
    /// Take one API offline in one environment (callers get NOT_FOUND).
    Offline {
        api: String,
        #[arg(long)]
        env: String,
        /// Why, recorded in the audit trail (`pylon audit`).
        #[arg(long, default_value = "")]
        note: String,
        /// The definitions (whose `.pylon/releases` is the store).
        #[arg(long, default_value = ".")]
        defs: Vec<PathBuf>,
        #[command(flatten)]
        live: publish::LiveArgs,
    },
    /// List published versions (newest first; `*` marks the current one).
    History {
        api: Option<String>,
        #[arg(long)]
        env: Option<String>,
        /// The definitions (whose `.pylon/releases` is the store).
        #[arg(long, default_value = ".")]
        defs: Vec<PathBuf>,
    },
    /// Show the audit trail: every compile, publish, rollback and offline,
    /// with the APIs it added (+), changed (~) or removed (-) per environment.
    Audit {
        /// Only this API (`NAME` or `GROUP/NAME`).
        api: Option<String>,
        #[arg(long)]
        env: Option<String>,
        /// The definitions (whose `.pylon/audit.jsonl` is the trail).
        #[arg(long, default_value = ".")]
        defs: Vec<PathBuf>,
    },
    /// Make a random key for sealing secrets (base64 of 32 bytes).
    Keygen {
        /// Write it to FILE (created with mode 0600; an existing file is
        /// never overwritten) instead of printing it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Check definitions without writing anything.
    Validate {
        #[arg(required = true)]
        defs: Vec<PathBuf>,
        /// Admin address backends must not reach, as for `compile`.
        #[arg(long)]
        admin: Option<String>,
    },
    /// Send a request signed with an app's (or account's) credentials, or
    /// with an AppCode, and print the response like `curl -i`.
    Call {
        /// The URL to call (plain HTTP).
        url: String,
        #[arg(short = 'X', long, default_value = "GET")]
        method: String,
        /// A request header, `Name: value` (repeatable).
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        /// The request body.
        #[arg(short = 'd', long)]
        data: Option<String>,
        /// How to authenticate.
        #[arg(long, value_enum, default_value = "huawei")]
        scheme: call::Scheme,
        /// AppKey (or an account's AK).
        #[arg(long, env = "PYLON_KEY")]
        key: Option<String>,
        /// AppSecret (or SK); prefer the environment variable.
        #[arg(long, env = "PYLON_SECRET", hide_env_values = true)]
        secret: Option<String>,
        #[arg(long, env = "PYLON_APP_CODE", hide_env_values = true)]
        app_code: Option<String>,
        /// Environment to call (`X-Stage`, or `X-Ca-Stage` for aliyun).
        #[arg(long)]
        stage: Option<String>,
    },
    /// Read Swagger 2.0 / OpenAPI 3 documents (Huawei or Alibaba extensions,
    /// or none) and write Pylon definitions that `pylon compile` accepts.
    #[command(after_help = IMPORT_EXAMPLE)]
    Import {
        /// Swagger 2.0 or OpenAPI 3.x documents, YAML or JSON.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Directory for the definitions (one `<group>.yaml` per document).
        #[arg(long, short)]
        out: PathBuf,
        /// Fail, writing nothing, if any field is not honoured.
        #[arg(long)]
        strict: bool,
        /// Backend for operations the document gives none:
        /// `http[s]://host[:port][/base]` (the API path is appended to /base).
        #[arg(long, value_name = "URL")]
        backend: Option<String>,
        /// Group name (default: `info.title`).
        #[arg(long)]
        group: Option<String>,
        /// Publish the imported APIs to this environment (repeatable; default:
        /// none, as the consoles' imports).
        #[arg(long = "publish", value_name = "ENV")]
        publish: Vec<String>,
    },
    /// Write one group's APIs as a Swagger 2.0 document with Huawei or
    /// Alibaba extensions, or as plain OpenAPI 3.
    Export {
        #[arg(required = true)]
        defs: Vec<PathBuf>,
        /// base: front end; full: plus backends; extended: plus throttling
        /// and access-control policies.
        #[arg(long, value_enum, default_value = "full")]
        scope: openapi::Scope,
        /// The group to export (needed when there are several).
        #[arg(long)]
        group: Option<String>,
        /// Output file (`.json` for JSON, else YAML); default: stdout.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Manage callers' apps.
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
}

#[derive(Subcommand)]
enum AppCommand {
    /// Print a new app definition with a random AppKey and AppSecret.
    New {
        /// The app's name.
        name: String,
    },
}

const IMPORT_EXAMPLE: &str = "\
Example (a Huawei console export, and back):
  pylon import apis.json --out defs/ --publish RELEASE --strict
  pylon compile defs/ --out build/
  pylon export defs/ --format huawei --scope extended --out apis.yaml
A document without backends (a base-scope export, plain OpenAPI without
servers) needs --backend http://10.0.0.5:8080. Anything not honoured is
reported with its JSON pointer, e.g.
  refused: #/paths/~1test~1{path}/get/x-apigateway-backend-policies/0/type
  (GET /test/{path}): `HTTP-VPC`: VPC channels ... are not supported; left out";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = cli.format;
    let result = match cli.command {
        Command::Validate { defs, admin } => validate(&defs, admin),
        Command::App {
            command: AppCommand::New { name },
        } => new_app(&name),
        Command::Call {
            url,
            method,
            headers,
            data,
            scheme,
            key,
            secret,
            app_code,
            stage,
        } => {
            let headers: Result<Vec<(String, String)>, String> = headers
                .iter()
                .map(|h| {
                    h.split_once(':')
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .ok_or_else(|| format!("header `{h}` must be `Name: value`"))
                })
                .collect();
            let outcome = headers.and_then(|headers| {
                call::run(call::Call {
                    method,
                    url,
                    headers,
                    body: data.unwrap_or_default().into_bytes(),
                    scheme,
                    key,
                    secret,
                    app_code,
                    stage,
                })
            });
            return match outcome {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(22),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            };
        }
        Command::Compile {
            defs,
            out,
            wasm,
            listen,
            admin,
            seal_key_file,
            target,
            wasm_url,
            note,
        } => compile(
            &defs,
            &out,
            wasm,
            listen,
            admin,
            seal_key_file,
            (target, wasm_url),
        )
        .map(|(msg, loaded)| audit_compile(&defs, &loaded, &note, msg)),
        Command::Publish {
            defs,
            env,
            apis,
            note,
            live,
        } => publish::publish(&live.target(defs), &env, &apis, &note),
        Command::Rollback {
            api,
            env,
            to,
            note,
            defs,
            live,
        } => publish::rollback(&live.target(defs), &api, &env, to, &note),
        Command::Offline {
            api,
            env,
            note,
            defs,
            live,
        } => publish::offline(&live.target(defs), &api, &env, &note),
        Command::History { api, env, defs } => {
            publish::history(&defs, api.as_deref(), env.as_deref())
        }
        Command::Audit { api, env, defs } => audit::show(&defs, env.as_deref(), api.as_deref())
            .map_err(|m| vec![DefError::new(Path::new("(audit)"), "", "", m)]),
        Command::Keygen { out } => keygen(out.as_deref()),
        Command::Import {
            files,
            out,
            strict,
            backend,
            group,
            publish,
        } => openapi::run_import(
            &files,
            &out,
            strict,
            &openapi::import::Options {
                group,
                backend,
                publish,
            },
        ),
        Command::Export {
            defs,
            scope,
            group,
            out,
        } => match format {
            Format::Huawei => Ok(openapi::Format::Huawei),
            Format::Aliyun => Ok(openapi::Format::Aliyun),
            Format::Openapi => Ok(openapi::Format::Openapi),
            _ => Err(vec![DefError::new(
                Path::new("(command line)"),
                "",
                "",
                "export needs --format huawei, aliyun or openapi",
            )]),
        }
        .and_then(|f| openapi::run_export(&defs, group.as_deref(), f, scope, out.as_deref())),
    };
    match result {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(mut errors) => {
            error::locate(&mut errors);
            match format {
                Format::Text | Format::Huawei | Format::Aliyun | Format::Openapi => {
                    for e in &errors {
                        eprintln!("error: {e}");
                    }
                    eprintln!("{} error(s); nothing written", errors.len());
                }
                Format::Json => {
                    let list: Vec<_> = errors.iter().map(DefError::to_json).collect();
                    eprintln!("{}", serde_json::json!({ "errors": list }));
                }
            }
            ExitCode::FAILURE
        }
    }
}

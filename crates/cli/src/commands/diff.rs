//! `swarmkeeper diff -c FILE… STACK` (and `deploy --dry-run`): what a deploy of the files
//! would do to each service (create, update, restart, leave alone, remove), field by field,
//! and to the stack's networks, secrets and configs, changing nothing. Exit 0 when nothing
//! would change, 1 when something would, 2 on bad input, 3 when the engine fails.

use clap::Args;
use serde_json::json;
use swarmkeeper_compose::stack_spec;
use swarmkeeper_deploy::{Options, Preview, Progress, Request, Stack};
use swarmkeeper_engine::Engine;
use swarmkeeper_rollout::{describe_change, shown, DiffKind};
use swarmkeeper_store::FileDigest;

use super::{load_stack_files, read_object_files, ComposeFiles, StackFiles};
use crate::exit::{block_on, CmdResult, Failure};

#[derive(Args)]
pub struct DiffArgs {
    #[command(flatten)]
    compose: ComposeFiles,
    /// The stack's name (the `com.docker.stack.namespace` label and the services' prefix).
    #[arg(value_parser = super::stack_name)]
    stack: String,
    #[command(flatten)]
    plan: PlanArgs,
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
    /// Print the diff as one JSON object.
    #[arg(long)]
    json: bool,
}

/// How a deploy turns the files into specs: `deploy` and `diff` take the same flags, so that
/// a diff shows what that deploy would do.
#[derive(Args)]
pub struct PlanArgs {
    /// Deploy the file exactly as written: no safe defaults.
    #[arg(long)]
    pub no_safe_defaults: bool,
    /// Do not ask the registry for image digests (the image tag is used as written).
    #[arg(long)]
    pub no_resolve_image: bool,
    /// Remove the stack's services that the files no longer name, like `docker stack deploy
    /// --prune` (recorded in the revision; a rollback puts them back).
    #[arg(long)]
    pub prune: bool,
}

impl PlanArgs {
    pub fn options(&self) -> Options {
        Options {
            safe_defaults: !self.no_safe_defaults,
            resolve_digests: !self.no_resolve_image,
            prune: self.prune,
            ..Options::default()
        }
    }
}

/// The files of `-c FILE…` made into the stack `name` as a deploy sends it, with the
/// content of its secret and config files and each file's digest for the history. With
/// `refuse_lint_errors` (a deploy without `--ignore-lint`, as the dashboard does), files with
/// an error-level lint finding are bad input; each finding is printed as `lint` prints it.
pub fn load(
    compose: &ComposeFiles,
    name: &str,
    refuse_lint_errors: bool,
) -> Result<(Stack, Vec<FileDigest>), Failure> {
    let StackFiles { stack, digests, .. } = load_stack_files(&compose.files)?;
    if refuse_lint_errors {
        lint_gate(&stack)?;
    }
    let spec = stack_spec(name, &stack).map_err(|e| {
        Failure::Usage(format!(
            "{}:{}:{}: {}",
            stack.file_name(e.at),
            e.at.line,
            e.at.column,
            e.message
        ))
    })?;
    let files = read_object_files(&spec)?;
    Ok((Stack { spec, files }, digests))
}

fn lint_gate(stack: &swarmkeeper_compose::Stack) -> CmdResult {
    let findings = swarmkeeper_lint::lint(stack);
    let errors: Vec<_> = findings
        .iter()
        .filter(|f| f.severity == swarmkeeper_lint::Severity::Error)
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    for f in &errors {
        eprintln!(
            "{}:{}:{}: error {}: {}",
            f.file, f.line, f.column, f.rule, f.message
        );
    }
    Err(Failure::Usage(format!(
        "lint found {} error(s) in the files (`swarmkeeper lint` explains each); fix them, or \
         deploy anyway with --ignore-lint",
        errors.len()
    )))
}

pub fn run(args: DiffArgs) -> CmdResult {
    let (stack, digests) = load(&args.compose, &args.stack, false)?;
    let request = Request {
        stack: args.stack.clone(),
        by: super::deploy::who(&None),
        action: None,
        files: digests,
        registry_auth: args.registry.registry_auth()?,
    };
    show(&request, stack, &args.plan.options(), args.json)
}

/// Computes the preview and prints it; the exit code says whether anything would change.
pub fn show(request: &Request, stack: Stack, options: &Options, as_json: bool) -> CmdResult {
    let engine = Engine::from_env()?;
    let preview = block_on(swarmkeeper_deploy::preview(
        &engine,
        request,
        stack,
        options,
        &mut |p| {
            if let Progress::Warning(text) = p {
                eprintln!("warning: {text}");
            }
        },
    ))
    .map_err(super::deploy::failure)?;
    if as_json {
        println!("{}", to_json(&preview));
    } else {
        print_text(&preview);
    }
    if preview.changes_anything() {
        let changed = preview
            .services
            .iter()
            .filter(|s| s.kind != DiffKind::Unchanged)
            .count();
        let created = preview.objects.iter().filter(|o| o.create).count();
        return Err(Failure::Failed(format!(
            "a deploy of {} would change {changed} service(s) and create {created} \
             network(s), secret(s) or config(s)",
            request.stack
        )));
    }
    Ok(())
}

fn print_text(preview: &Preview) {
    for service in &preview.services {
        println!("service {}: {}", service.service, service.kind.as_str());
        for change in &service.changes {
            println!("  ~ {}", describe_change(change));
        }
    }
    for object in &preview.objects {
        let what = if object.create { "create" } else { "exists" };
        println!("{} {}: {what}", object.kind, object.name);
    }
    for name in &preview.left_alone {
        println!("service {name}: not in the files, left as it is (--prune removes it)");
    }
}

fn to_json(preview: &Preview) -> String {
    let services: Vec<_> = preview
        .services
        .iter()
        .map(|s| {
            let changes: Vec<_> = s
                .changes
                .iter()
                // Output that lands in CI logs: a credential's values are never in it.
                .map(shown)
                .map(|c| json!({"path": c.path, "before": c.before, "after": c.after}))
                .collect();
            json!({"name": s.service, "action": s.kind.as_str(), "changes": changes})
        })
        .collect();
    let objects: Vec<_> = preview
        .objects
        .iter()
        .map(|o| {
            json!({"kind": o.kind, "name": o.name,
                   "action": if o.create { "create" } else { "exists" }})
        })
        .collect();
    let value = json!({
        "changes": preview.changes_anything(),
        "services": services,
        "objects": objects,
        "left_alone": preview.left_alone,
    });
    serde_json::to_string_pretty(&value).expect("a JSON value serialises")
}

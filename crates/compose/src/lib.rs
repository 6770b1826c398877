//! The compose files of `docker stack deploy`, read the way the docker CLI reads them.
//!
//! [`load`] parses one or more compose files (version 3.x or unversioned), interpolates
//! `${VARIABLES}`, reads `env_file`s through a callback, merges the files in order and checks
//! the references between services and the top-level definitions. The result is a [`Stack`]
//! whose services and settings remember where they were written ([`Location`]), for errors
//! and lint findings. [`stack_spec`] maps a stack to the Engine API objects that
//! `docker stack deploy STACK` would create.
//!
//! Nothing here touches the disk, the network or the process environment: the caller passes
//! the files' text, the variables, and a function that reads env files.

#[macro_use]
mod de;
mod convert;
mod env;
mod error;
mod interpolate;
mod located;
mod merge;
mod model;
pub mod reference;
mod refusals;
mod shlex;
pub mod spec;
mod syntax;
mod template;
mod units;
mod yaml;

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

pub use convert::{
    check_replicas, network_name, service_spec, stack_spec, validate, StackSpec, DEFAULT_NETWORK,
    DEFAULT_NETWORK_DRIVER, LABEL_IMAGE, LABEL_NAMESPACE, MAX_REPLICAS,
};
pub use de::{
    HostsList, IgnoredKey, Mapping, MappingWithEquals, NamedMap, ShellCommand, StringList,
};
pub use env::{bare_variable, parse_env_file, resolve_bind_source, resolve_path, EnvVariables};
pub use error::{ComposeError, Invalid, Location};
pub use located::Located;
pub use model::*;
pub use refusals::{engine_refusals, Refusal, MIN_MEMORY};
pub use units::{parse_bytes, parse_duration, parse_nano_cpus, Duration};

use merge::Merge;

/// One compose file's name (as it should appear in messages) and text.
#[derive(Clone, Copy, Debug)]
pub struct SourceFile<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

/// What a compose file may refer to outside itself.
pub struct Environment<'a> {
    /// Variables for `${VAR}` interpolation and for environment keys written without a value.
    pub variables: &'a HashMap<String, String>,
    /// Relative paths (bind mounts, `env_file`, secret and config files) are relative to this
    /// directory; the docker CLI uses the absolute directory of the first compose file.
    pub working_dir: &'a Path,
    /// Reads an env file at the resolved path.
    pub read_file: &'a dyn Fn(&str) -> std::io::Result<String>,
}

/// The merged stack, as `docker stack deploy` would deploy it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stack {
    /// The files' names, in the order given; [`Location::file`] indexes this.
    pub files: Vec<String>,
    /// Services by name, each with [`Service::at`] set.
    pub services: BTreeMap<String, Service>,
    pub networks: BTreeMap<String, Located<NetworkDefinition>>,
    pub volumes: BTreeMap<String, Located<VolumeDefinition>>,
    pub secrets: BTreeMap<String, Located<FileObjectDefinition>>,
    pub configs: BTreeMap<String, Located<FileObjectDefinition>>,
    /// Keys outside services that `docker stack deploy` accepts and ignores (the ones inside a
    /// service are on [`Service::ignored`]).
    pub ignored: Vec<IgnoredKey>,
}

impl Stack {
    /// The name of the file a location is in.
    pub fn file_name(&self, at: Location) -> &str {
        self.files.get(at.file).map_or("", String::as_str)
    }
}

/// Parses, interpolates and merges `files` in order, and checks the result.
pub fn load(
    files: &[SourceFile<'_>],
    environment: &Environment<'_>,
) -> Result<Stack, ComposeError> {
    if files.is_empty() {
        return Err(ComposeError::general("no compose file given"));
    }
    let error_at = |invalid: Invalid| {
        let file = &files[invalid.at.file];
        ComposeError::at(
            file.name,
            file.text,
            invalid.at.line,
            invalid.at.column,
            invalid.message,
        )
    };
    let mut merged: Option<ComposeFile> = None;
    let mut ignored = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let (mut parsed, notes) = parse_file(index, file, environment.variables)?;
        for note in notes {
            match note.path.as_slice() {
                [section, service, key @ ..] if section == "services" && !key.is_empty() => {
                    if let Some(service) = parsed
                        .services
                        .as_mut()
                        .and_then(|s| s.0.get_mut(service.as_str()))
                    {
                        service.value.ignored.push(IgnoredKey {
                            key: key.join("."),
                            at: note.at,
                            reason: note.reason,
                        });
                    }
                }
                path => ignored.push(IgnoredKey {
                    key: path.join("."),
                    at: note.at,
                    reason: note.reason,
                }),
            }
        }
        resolve_file(&mut parsed, environment).map_err(error_at)?;
        match merged.as_mut() {
            Some(merged) => merged.merge(parsed),
            None => merged = Some(parsed),
        }
    }
    let merged = merged.unwrap_or_default();
    let mut stack = Stack {
        files: files.iter().map(|f| f.name.to_string()).collect(),
        services: unpack(merged.services)
            .into_iter()
            .map(|(name, service)| {
                let mut value = service.value;
                value.at = service.at;
                (name, value)
            })
            .collect(),
        networks: unpack(merged.networks),
        volumes: unpack(merged.volumes),
        secrets: unpack(merged.secrets),
        configs: unpack(merged.configs)
            .into_iter()
            .map(|(name, config)| (name, Located::new(config.value.into(), config.at)))
            .collect(),
        ignored,
    };
    for service in stack.services.values_mut() {
        let restart_policy = service
            .deploy
            .as_ref()
            .is_some_and(|d| d.restart_policy.is_some());
        if let (Some(restart), true) = (&service.restart, restart_policy) {
            service.ignored.push(IgnoredKey {
                key: "restart".to_string(),
                at: restart.at,
                reason: "`deploy.restart_policy` is set, and wins".to_string(),
            });
        }
        service.ignored.sort_by_key(|i| i.at);
    }
    validate(&stack).map_err(error_at)?;
    Ok(stack)
}

fn unpack<T>(named: Option<NamedMap<T>>) -> BTreeMap<String, Located<T>> {
    named.map(|n| n.0).unwrap_or_default()
}

/// Reads one file as the docker CLI does: YAML, then `${VAR}` interpolation of every value
/// ([`template`] has the rules), then the compose keys. Returns the keys it ignores too.
fn parse_file(
    index: usize,
    file: &SourceFile<'_>,
    variables: &HashMap<String, String>,
) -> Result<(ComposeFile, Vec<de::Noted>), ComposeError> {
    let at = |line, column, message: String| {
        ComposeError::at(file.name, file.text, line, column, message)
    };
    let parsed = yaml::parse(index, file.text).map_err(|e| at(e.line, e.column, e.message))?;
    let mut root = parsed.root.ok_or_else(|| {
        at(
            1,
            1,
            "the file is empty: expected a mapping with `services`".to_string(),
        )
    })?;
    let lookup = |name: &str| variables.get(name).cloned();
    interpolate::interpolate(&mut root, &lookup)
        .map_err(|(place, e)| at(place.line, place.column, e.to_string()))?;
    let mut reader = de::Reader::default();
    if let Some(second) = parsed.more_documents {
        reader.ignore(
            "---",
            second,
            "docker stack deploy reads only the first YAML document of a file",
        );
    }
    let parsed =
        model::read_file(&root, &mut reader).map_err(|e| at(e.at.line, e.at.column, e.message))?;
    if let Some(version) = &parsed.version {
        model::check_version(version).map_err(|e| at(e.at.line, e.at.column, e.message))?;
    }
    Ok((parsed, reader.ignored))
}

/// Reads each service's env files into its environment, fills in variables written without a
/// value (or with an empty one) from the environment, and makes relative paths absolute; all
/// per file, before merging, as the docker CLI does.
fn resolve_file(file: &mut ComposeFile, environment: &Environment<'_>) -> Result<(), Invalid> {
    let lookup = |key: &str| environment.variables.get(key).cloned();
    let home = environment.variables.get("HOME").map(String::as_str);
    let base = environment.working_dir;
    for service in file.services.iter_mut().flat_map(|s| s.0.values_mut()) {
        let service = &mut service.value;
        if service.env_file.is_some() || service.environment.is_some() {
            // The environment wins over what is written when the value is missing or empty.
            let update = |variables: &mut BTreeMap<String, Option<String>>,
                          key: String,
                          value: Option<String>| {
                let value = match (value.as_deref(), lookup(&key)) {
                    (None | Some(""), Some(found)) => Some(found),
                    _ => value,
                };
                variables.insert(key, value);
            };
            let mut variables = BTreeMap::new();
            if let Some(env_files) = &service.env_file {
                for path in &env_files.0 {
                    let path = resolve_path(base, path);
                    let text = (environment.read_file)(&path)
                        .map_err(|e| Invalid::new(env_files.at, format!("env_file {path}: {e}")))?;
                    let parsed = parse_env_file(&text, lookup).map_err(|(line, message)| {
                        Invalid::new(
                            env_files.at,
                            format!("env_file {path}, line {line}: {message}"),
                        )
                    })?;
                    for (key, value) in parsed {
                        update(&mut variables, key, Some(value));
                    }
                }
            }
            let written = service.environment.take().unwrap_or_default();
            for (key, value) in written.0 {
                let value = match value {
                    Some(value) => Some(value),
                    None => {
                        let at = written.1.get(&key).copied().unwrap_or(service.at);
                        Some(bare_variable(&key, lookup).map_err(|e| Invalid::new(at, e))?)
                    }
                };
                update(&mut variables, key, value);
            }
            service.environment = Some(MappingWithEquals(variables, written.1));
        }
        for mount in service.volumes.iter_mut().flat_map(|v| &mut v.0) {
            if mount.kind == Some(MountType::Bind) {
                let source = mount.value.source.as_deref().unwrap_or_default();
                if source.is_empty() {
                    return Err(Invalid::new(mount.at, "a bind mount needs a `source`"));
                }
                mount.value.source = Some(resolve_bind_source(base, source, home));
            }
        }
    }
    for definition in file.secrets.iter_mut().flat_map(|d| d.0.values_mut()) {
        if !definition.is_external() && definition.driver.is_none() {
            definition.value.file = definition
                .value
                .file
                .as_deref()
                .map(|f| resolve_path(base, f));
        }
    }
    for definition in file.configs.iter_mut().flat_map(|d| d.0.values_mut()) {
        let external = definition.external.as_ref().is_some_and(|e| e.external);
        if !external {
            definition.value.file = definition
                .value
                .file
                .as_deref()
                .map(|f| resolve_path(base, f));
        }
    }
    Ok(())
}

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
mod located;
mod merge;
mod model;
pub mod spec;
mod units;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Serialize;
use serde_saphyr::{Options, PropertySyntax};

pub use convert::{
    service_spec, stack_spec, validate, Invalid, StackSpec, DEFAULT_NETWORK,
    DEFAULT_NETWORK_DRIVER, LABEL_IMAGE, LABEL_NAMESPACE,
};
pub use de::{
    split_shell_words, HostsList, Mapping, MappingWithEquals, NamedMap, ShellCommand, StringList,
};
pub use env::{parse_env_file, resolve_path, EnvVariables};
pub use error::{ComposeError, Location};
pub use located::Located;
pub use model::*;
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
    /// directory; the docker CLI uses the directory of the first compose file.
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
    let error_at = |at: Location, message: String| {
        let file = &files[at.file];
        ComposeError::at(file.name, file.text, at.line, at.column, message)
    };
    let mut merged: Option<ComposeFile> = None;
    for (index, file) in files.iter().enumerate() {
        let mut parsed = parse_file(index, file, environment.variables)?;
        resolve_file(&mut parsed, environment).map_err(|(at, message)| error_at(at, message))?;
        match merged.as_mut() {
            Some(merged) => merged.merge(parsed),
            None => merged = Some(parsed),
        }
    }
    let merged = merged.unwrap_or_default();
    let stack = Stack {
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
        configs: unpack(merged.configs),
    };
    validate(&stack).map_err(|invalid| error_at(invalid.at, invalid.message))?;
    Ok(stack)
}

fn unpack<T>(named: Option<NamedMap<T>>) -> BTreeMap<String, Located<T>> {
    named.map(|n| n.0).unwrap_or_default()
}

/// Parses one file with its variables interpolated as the docker CLI does: `${VAR}`, `$VAR`,
/// `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, and `$$` for `$`.
fn parse_file(
    index: usize,
    file: &SourceFile<'_>,
    variables: &HashMap<String, String>,
) -> Result<ComposeFile, ComposeError> {
    let mut options = Options::default().with_properties(variables.clone());
    options.property_syntax = PropertySyntax::DockerCompose;
    // Go's YAML reads `mode: 0440` as octal, and so do stack files written for it.
    options.legacy_octal_numbers = true;
    options.with_snippet = false;
    let parsed = located::while_parsing(index, || {
        serde_saphyr::from_str_with_options::<Option<ComposeFile>>(file.text, options)
    });
    match parsed {
        Ok(Some(parsed)) => Ok(parsed),
        Ok(None) => Err(ComposeError::at(
            file.name,
            file.text,
            1,
            1,
            "the file is empty: expected a mapping with `services`",
        )),
        Err(error) => {
            let error = error.without_snippet();
            let (line, column) = error
                .location()
                .map_or((0, 0), |at| (at.line() as u32, at.column() as u32));
            let message = error.to_string();
            let suffix = format!(" at line {line}, column {column}");
            let message = message
                .strip_suffix(&suffix)
                .unwrap_or(&message)
                .to_string();
            Err(ComposeError::at(
                file.name, file.text, line, column, message,
            ))
        }
    }
}

/// Reads each service's env files into its environment, fills in variables written without a
/// value, and makes relative paths absolute; all per file, before merging, as the docker CLI
/// does.
fn resolve_file(
    file: &mut ComposeFile,
    environment: &Environment<'_>,
) -> Result<(), (Location, String)> {
    let lookup = |key: &str| environment.variables.get(key).cloned();
    let home = environment.variables.get("HOME").map(String::as_str);
    let resolve = |path: &str| resolve_path(environment.working_dir, path, home);
    for service in file.services.iter_mut().flat_map(|s| s.0.values_mut()) {
        let service = &mut service.value;
        if service.env_file.is_some() || service.environment.is_some() {
            let mut variables = BTreeMap::new();
            if let Some(env_files) = &service.env_file {
                for path in &env_files.0 {
                    let path = resolve(path);
                    let text = (environment.read_file)(&path)
                        .map_err(|e| (env_files.at, format!("env_file {path}: {e}")))?;
                    let parsed = parse_env_file(&text, lookup).map_err(|(line, message)| {
                        (
                            env_files.at,
                            format!("env_file {path}, line {line}: {message}"),
                        )
                    })?;
                    variables.extend(parsed);
                }
            }
            variables.extend(service.environment.take().map(|e| e.0).unwrap_or_default());
            for (key, value) in &mut variables {
                if value.is_none() {
                    *value = lookup(key);
                }
            }
            service.environment = Some(MappingWithEquals(variables));
        }
        for mount in service.volumes.iter_mut().flat_map(|v| &mut v.0) {
            if mount.kind == Some(MountType::Bind) {
                mount.value.source = mount.value.source.as_deref().map(resolve);
            }
        }
    }
    for definitions in [&mut file.secrets, &mut file.configs] {
        for definition in definitions.iter_mut().flat_map(|d| d.0.values_mut()) {
            definition.value.file = definition.value.file.as_deref().map(resolve);
        }
    }
    Ok(())
}

//! What each page shows, computed from plain data: no I/O here, so every decision a page makes
//! (converged or not, which warnings, which events) is tested without an engine.

use serde::Serialize;

pub mod alert_rules;
pub mod chart;
pub mod logs;
pub mod networks;
pub mod node_admin;
pub mod nodes;
pub mod objects;
pub mod overview;
pub mod own;
pub mod service_form;
pub mod services;
pub mod stack_diff;
pub mod tasks;
pub mod usage_chart;
pub mod volumes;

/// A refusal tied to one field of a form (and of the JSON body, by the same name).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: String) -> FieldError {
        FieldError { field, message }
    }
}

/// The message for `field` among a form's `errors`, if it was refused: what a page shows next
/// to the field.
pub fn message_of<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a str> {
    errors
        .iter()
        .find(|e| e.field == field)
        .map(|e| e.message.as_str())
}

/// A form's `errors` as one line, `field: message; field: message`: what its JSON twin answers.
pub fn one_line(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The secret fields of a refused form that had been filled in: the form comes back with them
/// empty, each with "enter again" next to it, since a secret is never sent back to the browser
/// (not even to the admin who typed it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retype(Vec<&'static str>);

impl Retype {
    /// The fields of `posted` (name, value as typed) that are not empty.
    pub fn of(posted: &[(&'static str, &str)]) -> Retype {
        Retype(
            posted
                .iter()
                .filter(|(_, value)| !value.trim().is_empty())
                .map(|(field, _)| *field)
                .collect(),
        )
    }

    /// Whether `field` was filled in and is to be entered again.
    pub fn asks(&self, field: &str) -> bool {
        self.0.contains(&field)
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

//! Values that remember where in which file they were written, so that errors and lint
//! findings can point at them.

use std::cell::Cell;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize};
use serde_saphyr::Spanned;

use crate::Location;

/// A value and the place its text starts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Located<T> {
    pub value: T,
    pub at: Location,
}

impl<T> Located<T> {
    pub fn new(value: T, at: Location) -> Self {
        Located { value, at }
    }
}

impl<T> Deref for Located<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

thread_local! {
    /// Serde gives a `Deserialize` impl no context, and serde-saphyr only knows lines and
    /// columns; the index of the file being parsed is set here for the duration of one parse.
    static PARSING_FILE: Cell<usize> = const { Cell::new(0) };
}

/// Runs `parse` with locations attributed to file number `file`.
pub(crate) fn while_parsing<R>(file: usize, parse: impl FnOnce() -> R) -> R {
    let previous = PARSING_FILE.with(|f| f.replace(file));
    let result = parse();
    PARSING_FILE.with(|f| f.set(previous));
    result
}

pub(crate) fn location(at: &serde_saphyr::Location) -> Location {
    Location {
        file: PARSING_FILE.with(Cell::get),
        line: u32::try_from(at.line()).unwrap_or(u32::MAX),
        column: u32::try_from(at.column()).unwrap_or(u32::MAX),
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<T>::deserialize(deserializer)?;
        // An alias is reported where it is used: that is the line a reader of the service sees.
        let at = location(&spanned.referenced);
        Ok(Located::new(spanned.value, at))
    }
}

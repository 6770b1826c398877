//! Values that remember where in which file they were written, so that errors and lint
//! findings can point at them.

use std::ops::Deref;

use serde::Serialize;

use crate::Location;

/// A value and the place its text starts (for an alias, where the alias is used).
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

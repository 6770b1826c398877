//! Where a compose file went wrong: every error names the file, the line and the column, and
//! shows the line with a caret under the column, so a user can fix the file without guessing.

use std::fmt;

use serde::Serialize;

/// A place in one of the loaded compose files. Lines and columns start at 1 and count
/// characters, as editors do. `file` indexes [`crate::Stack::files`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Location {
    pub file: usize,
    pub line: u32,
    pub column: u32,
}

/// Bad input in a compose file, or a variable that had to be set and was not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComposeError {
    /// The file's name as the caller gave it (usually the path on the command line).
    pub file: String,
    /// 1-based; 0 when the problem has no single place (an empty file list).
    pub line: u32,
    pub column: u32,
    /// What was wrong and what was expected, on one line.
    pub message: String,
    /// The offending line and a caret under the column; empty when there is no place.
    pub snippet: String,
}

impl ComposeError {
    /// An error at `line`:`column` of `text`, the contents of the file called `file`.
    pub fn at(file: &str, text: &str, line: u32, column: u32, message: impl Into<String>) -> Self {
        ComposeError {
            file: file.to_string(),
            line,
            column,
            message: message.into(),
            snippet: snippet(text, line, column),
        }
    }

    /// An error that belongs to no line of any file.
    pub fn general(message: impl Into<String>) -> Self {
        ComposeError {
            file: String::new(),
            line: 0,
            column: 0,
            message: message.into(),
            snippet: String::new(),
        }
    }
}

impl fmt::Display for ComposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.file.is_empty(), self.line) {
            (true, _) => write!(f, "{}", self.message)?,
            (false, 0) => write!(f, "{}: {}", self.file, self.message)?,
            (false, line) => write!(
                f,
                "{}:{}:{}: {}",
                self.file, line, self.column, self.message
            )?,
        }
        if !self.snippet.is_empty() {
            write!(f, "\n{}", self.snippet)?;
        }
        Ok(())
    }
}

impl std::error::Error for ComposeError {}

/// Something wrong at one place of one file, before it is rendered with the file's text into
/// a [`ComposeError`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub at: Location,
    pub message: String,
}

impl Invalid {
    pub(crate) fn new(at: Location, message: impl Into<String>) -> Self {
        Invalid {
            at,
            message: message.into(),
        }
    }
}

/// The line `line` of `text` with a gutter holding its number, and a caret under `column`:
///
/// ```text
///    4 |     delay: 10x
///      |            ^
/// ```
fn snippet(text: &str, line: u32, column: u32) -> String {
    let Some(source_line) = line
        .checked_sub(1)
        .and_then(|index| text.lines().nth(index as usize))
    else {
        return String::new();
    };
    let number = line.to_string();
    let gutter = " ".repeat(number.len());
    // Tabs keep their width under the caret by being copied into the padding.
    let padding: String = source_line
        .chars()
        .take(column.saturating_sub(1) as usize)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    format!("{number} | {source_line}\n{gutter} | {padding}^")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_line_column_and_a_caret() {
        let text = "services:\n  web:\n    image: app\n";
        let err = ComposeError::at("stack.yml", text, 3, 12, "bad image");
        assert_eq!(
            err.to_string(),
            "stack.yml:3:12: bad image\n3 |     image: app\n  |            ^"
        );
    }

    #[test]
    fn an_unknown_place_has_no_snippet() {
        let err = ComposeError::at("stack.yml", "a: 1\n", 9, 1, "past the end");
        assert_eq!(err.to_string(), "stack.yml:9:1: past the end");
        assert_eq!(ComposeError::general("no files").to_string(), "no files");
    }
}

//! `command: serve --port 80` split into arguments the way the docker CLI splits it, with the
//! rules of the `google/shlex` package it uses: whitespace separates words; single quotes keep
//! everything; in double quotes a backslash makes the next character literal (whatever it is)
//! and is dropped; outside quotes a backslash makes the next character literal; a word that
//! starts with `#` starts a comment running to the end of the line.

/// The words of `line`, or why it cannot be split (an unclosed quote, a trailing backslash).
pub(crate) fn split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| is_space(*c)).is_some() {}
        let Some(&first) = chars.peek() else {
            return Ok(words);
        };
        if first == '#' {
            for c in chars.by_ref() {
                if c == '\n' {
                    break;
                }
            }
            continue;
        }
        let mut word = String::new();
        while let Some(c) = chars.next() {
            match c {
                c if is_space(c) => break,
                '\\' => match chars.next() {
                    Some(next) => word.push(next),
                    None => {
                        return Err("a backslash at the end leaves nothing to escape".to_string())
                    }
                },
                '\'' => loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("a single quote is not closed".to_string()),
                    }
                },
                '"' => loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(next) => word.push(next),
                            None => {
                                return Err(
                                    "a backslash at the end leaves nothing to escape".to_string()
                                )
                            }
                        },
                        Some(c) => word.push(c),
                        None => return Err("a double quote is not closed".to_string()),
                    }
                },
                c => word.push(c),
            }
        }
        words.push(word);
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_google_shlex() {
        let cases: [(&str, &[&str]); 9] = [
            ("nginx -g 'daemon off;'", &["nginx", "-g", "daemon off;"]),
            (
                "sh -c \"echo \\\"hi\\\" $HOME\"",
                &["sh", "-c", "echo \"hi\" $HOME"],
            ),
            ("  a\\ b  c ", &["a b", "c"]),
            ("''", &[""]),
            ("", &[]),
            // A backslash in double quotes escapes any character, and is dropped.
            ("\"a\\b\"", &["ab"]),
            ("echo hi # a comment\nnext", &["echo", "hi", "next"]),
            ("a#b", &["a#b"]),
            ("one\ttwo\nthree", &["one", "two", "three"]),
        ];
        for (line, words) in cases {
            assert_eq!(split(line).unwrap(), words, "{line}");
        }
        assert!(split("echo 'oops").is_err());
        assert!(split("echo \"oops").is_err());
        assert!(split("echo oops\\").is_err());
    }
}

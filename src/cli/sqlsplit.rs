//! Splits a SQL script into statements at `;`, ignoring semicolons inside '…' strings (with ''
//! escapes), "…" identifiers, `-- …` line comments and `/* … */` block comments. Statements
//! that are empty or only comments are dropped.

#[derive(Debug, PartialEq, Eq)]
pub struct Statement {
    /// 1-based position among the non-empty statements of the script.
    pub number: usize,
    /// 1-based line of the script where the statement's code (past leading comments) starts.
    pub line: usize,
    /// The statement text without the terminating `;`, trimmed (comments kept).
    pub text: String,
    /// The statement's code on its first line, for error messages.
    pub first_line: String,
}

pub fn split(script: &str) -> Vec<Statement> {
    #[derive(PartialEq)]
    enum State {
        Code,
        Str,
        Ident,
        LineComment,
        BlockComment,
    }
    let mut out = Vec::new();
    let mut state = State::Code;
    let mut start = 0usize;
    let mut code_start: Option<usize> = None;
    let mut chars = script.char_indices().peekable();
    let finish = |start: usize, end: usize, code_start: Option<usize>, out: &mut Vec<Statement>| {
        let Some(code) = code_start else {
            return;
        };
        let rest = &script[code..end];
        out.push(Statement {
            number: out.len() + 1,
            line: 1 + script[..code].matches('\n').count(),
            text: script[start..end].trim().to_string(),
            first_line: rest.lines().next().unwrap_or("").trim_end().to_string(),
        });
    };
    while let Some((i, c)) = chars.next() {
        match state {
            State::Code => match c {
                ';' => {
                    finish(start, i, code_start, &mut out);
                    start = i + 1;
                    code_start = None;
                }
                '\'' => {
                    state = State::Str;
                    code_start.get_or_insert(i);
                }
                '"' => {
                    state = State::Ident;
                    code_start.get_or_insert(i);
                }
                '-' if chars.peek().map(|&(_, n)| n) == Some('-') => {
                    chars.next();
                    state = State::LineComment;
                }
                '/' if chars.peek().map(|&(_, n)| n) == Some('*') => {
                    chars.next();
                    state = State::BlockComment;
                }
                c if c.is_whitespace() => {}
                _ => {
                    code_start.get_or_insert(i);
                }
            },
            // A doubled quote inside a string or identifier is an escaped quote: leaving and
            // re-entering the state on the next character handles it.
            State::Str => {
                if c == '\'' {
                    state = State::Code;
                }
            }
            State::Ident => {
                if c == '"' {
                    state = State::Code;
                }
            }
            State::LineComment => {
                if c == '\n' {
                    state = State::Code;
                }
            }
            State::BlockComment => {
                if c == '*' && chars.peek().map(|&(_, n)| n) == Some('/') {
                    chars.next();
                    state = State::Code;
                }
            }
        }
    }
    finish(start, script.len(), code_start, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        split(s).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn splits_on_semicolons_outside_strings_and_comments() {
        let script = "CREATE TABLE t (a TEXT PRIMARY KEY);\n\
                      -- a comment; still a comment\n\
                      INSERT INTO t VALUES ('x;y'), ('it''s; fine');\n\
                      /* block; comment */ SELECT \"we;ird\" FROM t\n";
        assert_eq!(
            texts(script),
            vec![
                "CREATE TABLE t (a TEXT PRIMARY KEY)",
                "-- a comment; still a comment\nINSERT INTO t VALUES ('x;y'), ('it''s; fine')",
                "/* block; comment */ SELECT \"we;ird\" FROM t",
            ]
        );
    }

    #[test]
    fn numbers_lines_and_drops_empty_statements() {
        let script = "\n\n  SELECT 1;;\n -- only a comment;\n;\n\nSELECT\n  2;  ";
        let stmts = split(script);
        assert_eq!(stmts.len(), 2);
        assert_eq!((stmts[0].number, stmts[0].line), (1, 3));
        assert_eq!((stmts[1].number, stmts[1].line), (2, 7));
        assert_eq!(stmts[1].first_line, "SELECT");
        let stmts =
            split("SELECT 1;\n-- about t\n/* x */ CREATE TABLE t (\n a BIGINT PRIMARY KEY)");
        assert_eq!((stmts[1].number, stmts[1].line), (2, 3));
        assert_eq!(stmts[1].first_line, "CREATE TABLE t (");
        assert!(split("  -- nothing\n/* here */ ;").is_empty());
        assert!(split("").is_empty());
    }
}

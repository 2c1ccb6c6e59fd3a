//! A small aligned-table renderer in the style of psql:
//!
//! ```text
//!  id | name  | score
//! ----+-------+-------
//!   1 | alice |   1.5
//!   2 | bob   | NULL
//! ```
//!
//! Numbers are right-aligned, everything else left-aligned; widths count Unicode scalar values.
//! Trailing spaces are trimmed so the output is stable for diffs and scripts.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<(String, Align)>>,
}

impl Table {
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Table {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells render empty, extra cells are ignored.
    pub fn row(&mut self, cells: Vec<(String, Align)>) {
        self.rows.push(cells);
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn render(&self) -> String {
        let n = self.headers.len();
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (i, (text, _)) in row.iter().take(n).enumerate() {
                widths[i] = widths[i].max(width(text));
            }
        }
        let mut out = String::new();
        let mut line = String::new();
        let push_line = |line: &mut String, out: &mut String| {
            out.push_str(line.trim_end());
            out.push('\n');
            line.clear();
        };
        for (i, h) in self.headers.iter().enumerate() {
            if i > 0 {
                line.push('|');
            }
            // Headers are centred like psql's.
            let pad = widths[i] - width(h);
            line.push(' ');
            line.push_str(&" ".repeat(pad / 2));
            line.push_str(h);
            line.push_str(&" ".repeat(pad - pad / 2));
            line.push(' ');
        }
        push_line(&mut line, &mut out);
        for (i, w) in widths.iter().enumerate() {
            if i > 0 {
                line.push('+');
            }
            line.push_str(&"-".repeat(w + 2));
        }
        push_line(&mut line, &mut out);
        for row in &self.rows {
            for (i, w) in widths.iter().enumerate() {
                if i > 0 {
                    line.push('|');
                }
                let (text, align) = row
                    .get(i)
                    .map(|(t, a)| (t.as_str(), *a))
                    .unwrap_or(("", Align::Left));
                let pad = " ".repeat(w - width(text));
                line.push(' ');
                match align {
                    Align::Left => {
                        line.push_str(text);
                        line.push_str(&pad);
                    }
                    Align::Right => {
                        line.push_str(&pad);
                        line.push_str(text);
                    }
                }
                line.push(' ');
            }
            push_line(&mut line, &mut out);
        }
        out
    }
}

/// Convenience: a cell from a value.
pub fn value_cell(v: &tarn_types::Value) -> (String, Align) {
    let align = if super::value::is_numeric(v) {
        Align::Right
    } else {
        Align::Left
    };
    (super::value::format_value(v), align)
}

/// Convenience: a right-aligned cell from any number.
pub fn num_cell(n: impl std::fmt::Display) -> (String, Align) {
    (n.to_string(), Align::Right)
}

/// Convenience: a left-aligned text cell.
pub fn text_cell(s: impl Into<String>) -> (String, Align) {
    (s.into(), Align::Left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tarn_types::Value;

    #[test]
    fn renders_aligned_psql_style() {
        let mut t = Table::new(["id", "name", "score"]);
        t.row(vec![
            value_cell(&Value::Int(1)),
            value_cell(&Value::Text("alice".into())),
            value_cell(&Value::Double(1.5)),
        ]);
        t.row(vec![
            value_cell(&Value::Int(22)),
            value_cell(&Value::Text("bob".into())),
            value_cell(&Value::Null),
        ]);
        assert_eq!(
            t.render(),
            concat!(
                " id | name  | score\n",
                "----+-------+-------\n",
                "  1 | alice |   1.5\n",
                " 22 | bob   | NULL\n",
            )
        );
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn header_only_and_wide_headers() {
        let t = Table::new(["a", "longer_header"]);
        assert_eq!(t.render(), " a | longer_header\n---+---------------\n");
        let mut t = Table::new(["x"]);
        t.row(vec![text_cell("")]);
        t.row(vec![num_cell(12345)]);
        assert_eq!(t.render(), "   x\n-------\n\n 12345\n");
    }

    #[test]
    fn widths_count_characters_not_bytes_and_short_rows_pad() {
        let mut t = Table::new(["k", "v"]);
        t.row(vec![text_cell("héé"), text_cell("x")]);
        t.row(vec![text_cell("a")]);
        assert_eq!(t.render(), "  k  | v\n-----+---\n héé | x\n a   |\n");
    }
}

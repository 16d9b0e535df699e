//! CSV as spreadsheets read it (RFC 4180): a header row, fields quoted when they hold a comma,
//! a quote or a line break, quotes doubled, lines ended with CRLF. A field that a spreadsheet
//! would run as a formula (starting `=`, `+`, `-`, `@`) is prefixed with `'`: a patron's name
//! from upstream is data, never a formula.

/// A CSV document being written, row by row.
pub(crate) struct Csv {
    text: String,
}

impl Csv {
    pub fn with_header(columns: &[&str]) -> Self {
        let mut csv = Self {
            text: String::new(),
        };
        csv.row(columns);
        csv
    }

    pub fn row<S: AsRef<str>>(&mut self, fields: &[S]) {
        let line: Vec<String> = fields.iter().map(|f| field(f.as_ref())).collect();
        self.text.push_str(&line.join(","));
        self.text.push_str("\r\n");
    }

    pub fn into_text(self) -> String {
        self.text
    }
}

fn field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_quotes_line_breaks_and_formulas_are_quoted() {
        let mut csv = Csv::with_header(&["space", "note"]);
        csv.row(&["Room \"A\", east", "two\nlines"]);
        csv.row(&["=HYPERLINK(\"x\")", "plain"]);
        assert_eq!(
            csv.into_text(),
            "space,note\r\n\"Room \"\"A\"\", east\",\"two\nlines\"\r\n\"'=HYPERLINK(\"\"x\"\")\",plain\r\n"
        );
    }
}

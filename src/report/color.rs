//! Colour for the text report: status words painted on a terminal, nothing anywhere else.
//! `--color auto` (the default) paints only when the stream is a terminal and `NO_COLOR` is unset
//! or empty (<https://no-color.org>); `always` and `never` override both.

use anstyle::{AnsiColor, Style};

/// When to paint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether to paint a stream that `is_terminal` or not, with `no_color` the value of `NO_COLOR`.
    pub fn enabled(self, is_terminal: bool, no_color: Option<&str>) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && no_color.is_none_or(str::is_empty),
        }
    }
}

const GOOD: &[&str] = &["OK", "verified", "trusted", "matches", "accepted"];
const BAD: &[&str] = &[
    "FAILED", "ERROR:", "error", "REJECTED", "MISMATCH", "NOT", "CRITICAL", "FAIL", "ABORTED",
];
const WARN: &[&str] = &["WARNING", "warning", "WARNING:", "TEMPORARY"];

/// Paints the status words of a rendered report (the report's own words; server text is already
/// sanitized, so nothing in it can carry escape sequences of its own).
pub fn paint(text: &str) -> String {
    let green = Style::new().fg_color(Some(AnsiColor::Green.into())).bold();
    let red = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
    let yellow = Style::new().fg_color(Some(AnsiColor::Yellow.into())).bold();
    let mut out = String::with_capacity(text.len() + 64);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let painted: Vec<String> = line
            .split(' ')
            .map(|word| {
                let style = if GOOD.contains(&word) {
                    Some(green)
                } else if BAD.contains(&word) {
                    Some(red)
                } else if WARN.contains(&word) {
                    Some(yellow)
                } else {
                    None
                };
                match style {
                    Some(style) => format!("{style}{word}{style:#}"),
                    None => word.to_owned(),
                }
            })
            .collect();
        out.push_str(&painted.join(" "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_follows_the_terminal_and_no_color() {
        let table = [
            (ColorChoice::Auto, true, None, true),
            (ColorChoice::Auto, false, None, false),
            (ColorChoice::Auto, true, Some("1"), false),
            (ColorChoice::Auto, true, Some(""), true),
            (ColorChoice::Always, false, Some("1"), true),
            (ColorChoice::Never, true, None, false),
        ];
        for (choice, tty, no_color, want) in table {
            assert_eq!(
                choice.enabled(tty, no_color),
                want,
                "{choice:?} {tty} {no_color:?}"
            );
        }
    }

    #[test]
    fn paints_status_words_only() {
        let text = "Verification: FAILED\n  chain:      trusted\nServer: mx";
        let painted = paint(text);
        let red = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
        let green = Style::new().fg_color(Some(AnsiColor::Green.into())).bold();
        assert!(
            painted.contains(&format!("{red}FAILED{red:#}")),
            "{painted:?}"
        );
        assert!(
            painted.contains(&format!("{green}trusted{green:#}")),
            "{painted:?}"
        );
        assert!(painted.ends_with("Server: mx"));
        assert_eq!(paint("plain words"), "plain words");
    }
}

//! The transcript of a dialogue: each line sent and received, marked plaintext or TLS, with the
//! probe's own notes between. Recorded for the JSON report and, when a sink is set, shown live.
//! Secrets never enter it: commands that carry one record a redacted form.

use std::fmt;

/// Who wrote a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// smtptls sent it.
    Sent,
    /// The server sent it.
    Received,
    /// A note from smtptls (TLS facts, warnings).
    Info,
}

/// One transcript line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// Who wrote it.
    pub direction: Direction,
    /// Whether it travelled inside TLS.
    pub tls: bool,
    /// The line, without line ending (server text as received, decoded lossily).
    pub text: String,
}

impl Entry {
    /// The marker swaks users know: `->`/`<-` plaintext, `~>`/`<~` inside TLS, `==` notes.
    pub fn marker(&self) -> &'static str {
        match (self.direction, self.tls) {
            (Direction::Sent, false) => "->",
            (Direction::Received, false) => "<-",
            (Direction::Sent, true) => "~>",
            (Direction::Received, true) => "<~",
            (Direction::Info, _) => "==",
        }
    }
}

impl fmt::Display for Entry {
    /// The line as shown on a terminal: marker, then the text sanitized.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.marker(),
            crate::sanitize::for_terminal(&self.text)
        )
    }
}

/// A live view of the transcript (the terminal, in the CLI).
pub type Sink = Box<dyn FnMut(&Entry) + Send>;

/// The recorded lines, and where to show them as they happen.
#[derive(Default)]
pub struct Transcript {
    entries: Vec<Entry>,
    sink: Option<Sink>,
}

impl fmt::Debug for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transcript")
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl Transcript {
    /// A transcript that also shows each line through `sink`.
    pub fn with_sink(sink: Sink) -> Self {
        Self {
            entries: Vec::new(),
            sink: Some(sink),
        }
    }

    /// Records a line.
    pub fn push(&mut self, direction: Direction, tls: bool, text: impl Into<String>) {
        let entry = Entry {
            direction,
            tls,
            text: text.into(),
        };
        if let Some(sink) = self.sink.as_mut() {
            sink(&entry);
        }
        self.entries.push(entry);
    }

    /// Records a note.
    pub fn info(&mut self, text: impl Into<String>) {
        self.push(Direction::Info, false, text);
    }

    /// Every line so far.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Takes the lines out, leaving the transcript empty.
    pub fn take(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn markers_tell_plaintext_from_tls() {
        let table = [
            (Direction::Sent, false, "-> EHLO a"),
            (Direction::Received, false, "<- EHLO a"),
            (Direction::Sent, true, "~> EHLO a"),
            (Direction::Received, true, "<~ EHLO a"),
            (Direction::Info, true, "== EHLO a"),
        ];
        for (direction, tls, want) in table {
            let entry = Entry {
                direction,
                tls,
                text: "EHLO a".into(),
            };
            assert_eq!(entry.to_string(), want);
        }
    }

    #[test]
    fn display_sanitizes_server_text() {
        let entry = Entry {
            direction: Direction::Received,
            tls: false,
            text: "220 \x1b[2Jhi".into(),
        };
        assert!(!entry.to_string().contains('\x1b'), "{entry}");
    }

    #[test]
    fn sink_sees_every_line_as_recorded() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let copy = seen.clone();
        let mut transcript =
            Transcript::with_sink(Box::new(move |e| copy.lock().unwrap().push(e.to_string())));
        transcript.push(Direction::Sent, false, "EHLO a");
        transcript.info("note");
        assert_eq!(*seen.lock().unwrap(), vec!["-> EHLO a", "== note"]);
        assert_eq!(transcript.entries().len(), 2);
    }
}
